// A real OpenID provider on loopback for restauth-wsgi's tests (oidc-provider 8.x).
//
//   node server.mjs   with PORT, KEYS_FILE (a private JWKS), ACCESS_TTL (seconds)
//
// Resource indicators decide the access-token format: RESOURCE_JWT yields a
// JWT (aud = that URL, typ at+jwt), RESOURCE_OPAQUE (and RESOURCE_OTHER, another
// API of the same provider) an opaque token; an
// authorization-code token with `openid` and no resource is an opaque token
// for the userinfo endpoint. Tokens live in memory: a restart forgets every
// opaque token, while JWTs stay verifiable as long as KEYS_FILE keeps the key.
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const jwks = JSON.parse(readFileSync(process.env.KEYS_FILE, 'utf8'));
const accessTtl = Number(process.env.ACCESS_TTL || 300);

export const RESOURCE_JWT = 'https://api.example.test/jwt';
export const RESOURCE_OPAQUE = 'https://api.example.test/opaque';
// Another API of the same provider: its opaque tokens must not pass for ours.
export const RESOURCE_OTHER = 'https://other.example.test/opaque';

const accounts = {
  alice: { email: 'Alice@Example.com', email_verified: true, groups: ['engineering', 'admins'] },
  bob: { email: 'bob@example.com', email_verified: false, groups: ['operations'] },
};

const configuration = {
  jwks,
  clients: [
    {
      // Obtains tokens: client credentials and the authorization-code flow.
      client_id: 'api-client',
      client_secret: 'api-client-secret',
      grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      // The resource server: introspects with client_secret_basic.
      client_id: 'resource-server',
      client_secret: 'resource-server-secret',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      // The same, with client_secret_post.
      client_id: 'resource-server-post',
      client_secret: 'resource-server-post-secret',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  async findAccount(ctx, id) {
    const known = accounts[id] || { email: `${id}@example.com`, email_verified: true, groups: [] };
    return {
      accountId: id,
      async claims() {
        // The account "explode" breaks userinfo (a 500, server_error), as a
        // provider may for one token; everything else about it works.
        if (id === 'explode' && ctx && ctx.oidc && ctx.oidc.route === 'userinfo') {
          throw new Error('this account breaks userinfo');
        }
        return { sub: id, preferred_username: id, ...known };
      },
    };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'groups'],
  },
  scopes: ['openid', 'email', 'profile', 'offline_access', 'read', 'write'],
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => false,
      getResourceServerInfo(ctx, resourceIndicator) {
        if (resourceIndicator === RESOURCE_JWT) {
          return { scope: 'read write', accessTokenFormat: 'jwt', accessTokenTTL: accessTtl };
        }
        if (resourceIndicator === RESOURCE_OPAQUE || resourceIndicator === RESOURCE_OTHER) {
          return { scope: 'read write', accessTokenFormat: 'opaque', accessTokenTTL: accessTtl };
        }
        throw new Provider.errors.InvalidTarget();
      },
    },
  },
  ttl: {
    AccessToken: accessTtl,
    ClientCredentials: accessTtl,
    AuthorizationCode: 60,
    IdToken: accessTtl,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  pkce: { required: () => true },
  cookies: { keys: ['test-cookie-key'] },
};

const provider = new Provider(issuer, configuration);
for (const event of ['server_error', 'grant.error', 'introspection.error', 'userinfo.error']) {
  provider.on(event, (ctx, err) => console.error(event, err));
}
provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
