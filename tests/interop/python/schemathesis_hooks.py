"""Serializers schemathesis lacks for media types our OpenAPI documents name
(loaded with SCHEMATHESIS_HOOKS=schemathesis_hooks)."""

import schemathesis


@schemathesis.serializer("application/timestamp-query")
def timestamp_query(ctx, value):
    # a DER TimeStampReq: whatever bytes were generated, as they are
    return value if isinstance(value, bytes) else str(value).encode()
