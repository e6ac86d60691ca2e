# Rego v0: denied, the provenance names another builder.
package signature

default allow = false

allow {
  input.predicate.builder.id == "someone-else"
}
