"""Core: result objects, filters and scope, roles, identity, how results print. Imports no other layer."""
