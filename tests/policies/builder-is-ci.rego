# Rego v0, as cosign evaluates it: allowed when the provenance names the CI builder.
package signature

default allow = false

allow {
  input.predicateType == "https://slsa.dev/provenance/v0.2"
  input.predicate.builder.id == "ci"
}
