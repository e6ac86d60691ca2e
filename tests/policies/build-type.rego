# Rego with the v1 keywords (import rego.v1): allowed when the build type and every
# subject's digest are as expected.
package signature

import rego.v1

allow if {
  input.predicate.buildType == "https://example.com/build"
  every s in input.subject {
    count(s.digest.sha256) == 64
  }
}
