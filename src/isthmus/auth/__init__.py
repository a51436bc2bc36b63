"""Auth: OAuth2 / OpenID Connect and the Globus Auth API."""
