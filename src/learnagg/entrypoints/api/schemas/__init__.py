"""Request models, one module per API family; their ordered checks raise the reference error codes."""
