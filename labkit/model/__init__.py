"""Pure Kubernetes networking semantics: no I/O, no imports from the rest of labkit."""
