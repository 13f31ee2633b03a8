"""API foundation: API-key and verified-session authentication, scopes, pagination."""
