// A real, independent OpenID Connect provider for kt's end-to-end tests: npm `oidc-provider`
// on 127.0.0.1 with a port the OS chose. Run `node e2e/oidc_provider/provider.mjs`; once it
// serves, it prints exactly one line to stdout:
//
//     oidc-provider listening on http://127.0.0.1:PORT
//
// and that URL is the issuer, byte for byte. Everything else it says goes to stderr. It exits
// when its stdin closes (the test that started it is gone) or on SIGTERM/SIGINT.
//
// Client `kt-cli`: a native public client (RFC 8252) with PKCE required; its loopback redirect
// http://127.0.0.1/callback accepts any port. Any login name signs in (devInteractions, with any
// password); its claims are sub = name = the login name, email = <login>@example.org (a login
// name that contains '@' is its own email, for users of another domain).
//
// Env EXTRA_CLIENT_JSON (optional): one more client's metadata as JSON, e.g. kt-devserver as a
// confidential web client whose redirect URI (its port) is only known when the test starts it.
//
// Env SCOPES (optional): the only scopes the provider supports, space-separated, e.g. "openid"
// (issue 10 case 2: a provider that grants neither email nor offline_access). It publishes
// just those in scopes_supported, releases only their claims, and issues a refresh token only
// when offline_access was granted.
//
// Env DEVICE_ID_TOKEN=none (optional): the device grant's token response carries no id_token
// (issue 10 case 3: RFC 8628 §3.5 returns a plain RFC 6749 §5.1 token response, which need not
// have one). The access token still has openid, so UserInfo answers with sub and email, and
// refresh grants still return ID tokens. oidc-provider adds an ID token whenever openid was
// granted, so a post-middleware (its documented extension point, "Pre- and post-middlewares")
// takes it out, and says so on stderr: "device grant: id_token withheld".
//
// Env PAR (optional): pushed authorization requests (RFC 9126; issue 14 item 4). Unset: off
// (oidc-provider turns the feature on by default; here a configuration without it keeps the
// plain authorization request, with every parameter in its URL, under test). "on": the
// pushed_authorization_request_endpoint is advertised and used by kt. "required": also
// require_pushed_authorization_requests, so any request that was not pushed is refused.
//
// Env RESOURCES (optional): resource indicators (RFC 8707) the provider accepts, space-separated
// absolute URIs, e.g. the API URL kt signs in for. The resourceIndicators feature is always on;
// a request naming a listed resource gets a JWT access token (RS256, this provider's key) whose
// aud is that resource, with the resource's scopes (env RESOURCE_SCOPES, default "api"); a
// token request without `resource` keeps the granted one (useGrantedResource). A resource not
// listed (every resource, without RESOURCES) is refused with invalid_target.
//
// Env DPOP (optional): sender-constrained tokens (RFC 9449; issue 15 part 1). Unset: the dPoP
// feature off, so the other configurations keep plain bearer tokens under test. "on": a token
// request with a DPoP proof gets DPoP-bound tokens (refresh tokens bound too, the client being
// public), UserInfo wants the proof. "nonce": also a server nonce on every proof (nonceSecret,
// requireNonce), which kt learns from use_dpop_nonce.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';

// oidc-provider prints its notices with console.info: keep stdout for the readiness line alone.
console.info = console.error;
console.log = console.error;

const { default: Provider, errors } = await import('oidc-provider');

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

// A signing key of its own, made per run, rather than oidc-provider's published dev key.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'e2e-rs256', alg: 'RS256', use: 'sig' };

const extraClients = process.env.EXTRA_CLIENT_JSON ? [JSON.parse(process.env.EXTRA_CLIENT_JSON)] : [];

const onlyScopes = process.env.SCOPES ? process.env.SCOPES.split(' ').filter(Boolean) : null;
const scopes = onlyScopes ?? ['openid', 'offline_access', 'profile', 'email'];
const claimsByScope = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name'],
};
const claims = Object.fromEntries(
  Object.entries(claimsByScope).filter(([scope]) => scopes.includes(scope)),
);

const par = process.env.PAR ?? '';
if (!['', 'on', 'required'].includes(par)) {
  throw new Error(`PAR must be unset, "on" or "required", not ${JSON.stringify(par)}`);
}
const dpop = process.env.DPOP ?? '';
if (!['', 'on', 'nonce'].includes(dpop)) {
  throw new Error(`DPOP must be unset, "on" or "nonce", not ${JSON.stringify(dpop)}`);
}
const resources = (process.env.RESOURCES ?? '').split(' ').filter(Boolean);
const resourceScopes = process.env.RESOURCE_SCOPES ?? 'api';

const provider = new Provider(issuer, {
  clients: [
    ...extraClients,
    {
      client_id: 'kt-cli',
      token_endpoint_auth_method: 'none',
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/callback'],
      response_types: ['code'],
      grant_types: [
        'authorization_code',
        'refresh_token',
        'urn:ietf:params:oauth:grant-type:device_code',
      ],
    },
  ],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    dPoP: {
      enabled: dpop !== '',
      ...(dpop === 'nonce' ? { nonceSecret: randomBytes(32), requireNonce: () => true } : {}),
    },
    pushedAuthorizationRequests: {
      enabled: par !== '',
      requirePushedAuthorizationRequests: par === 'required',
    },
    resourceIndicators: {
      enabled: true,
      useGrantedResource: async () => true,
      async getResourceServerInfo(ctx, resourceIndicator) {
        if (!resources.includes(resourceIndicator)) {
          throw new errors.InvalidTarget(`${resourceIndicator} is not a resource of this provider`);
        }
        return {
          scope: resourceScopes,
          audience: resourceIndicator,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  scopes,
  claims,
  issueRefreshToken: onlyScopes
    ? async (ctx, client, code) => code.scopes.has('offline_access')
    : async () => true,
  rotateRefreshToken: true,
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        const email = id.includes('@') ? id : `${id}@example.org`;
        return { sub: id, email, email_verified: true, name: id };
      },
    };
  },
});

if (process.env.DEVICE_ID_TOKEN === 'none') {
  provider.use(async (ctx, next) => {
    await next();
    if (
      ctx.oidc?.route === 'token'
      && ctx.oidc.params?.grant_type === 'urn:ietf:params:oauth:grant-type:device_code'
      && ctx.body && typeof ctx.body === 'object' && 'id_token' in ctx.body
    ) {
      delete ctx.body.id_token;
      console.error('device grant: id_token withheld');
    }
  });
}

server.on('request', provider.callback());

function stop() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();

process.stdout.write(`oidc-provider listening on ${issuer}\n`);
