"""Staff accounts: sign-in, second factors (TOTP, backup codes, passkeys), session policy."""
