"""Sign-in use cases, one module per way in; none of them talks to a person directly.

What they need from one (a code, somewhere to show a URL or a device code) comes in as a
callable, so a terminal, an agent or a Python program can drive them. They never import `cli`.

    password   email + password, and the MFA challenge that may follow
    browser    Authorization Code + PKCE through the loopback listener; step-up
    device     RFC 8628 device authorization
    oidc       what browser and device share: the request, ID token and UserInfo checks, the Session
    finish     the account as the API sees it, saved in place of the old session (revoked)
"""
