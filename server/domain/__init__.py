"""Domains of the server: each folder owns its routes, rules and wire types."""
