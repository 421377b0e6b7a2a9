// A real OpenID Connect provider for fmn's API tests: node's oidc-provider, with
//  - a confidential client (the API) allowed to introspect any token (RFC 7662),
//  - the Resource Owner Password grant, so tests get real tokens for test users without a browser
//    (oidc-provider has no such grant; it is registered here with its own models),
//  - userinfo and introspection answers carrying the user's groups (claim "groups").
//
// Usage: node provider.mjs PORT ACCOUNTS.json
// ACCOUNTS.json: {"clients": [{"client_id", "client_secret"}],
//                 "accounts": {"alice": {"password": "...", "email": "...", "groups": ["..."]}}}
// The issuer is http://127.0.0.1:PORT. "ready" is printed once it listens.
import { readFileSync } from 'node:fs';
import Provider, { errors } from 'oidc-provider';

const [port, dataFile] = process.argv.slice(2);
const data = JSON.parse(readFileSync(dataFile, 'utf8'));
const accounts = data.accounts;
const issuer = `http://127.0.0.1:${port}`;

function claimsOf(id) {
  const account = accounts[id];
  return {
    sub: id,
    nickname: id,
    preferred_username: id,
    name: id,
    email: account.email ?? `${id}@example.org`,
    groups: account.groups ?? [],
  };
}

const provider = new Provider(issuer, {
  clients: data.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: ['client_credentials', 'password'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['nickname', 'preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  async findAccount(_ctx, id) {
    if (!accounts[id]) return undefined;
    return { accountId: id, claims: async () => claimsOf(id) };
  },
  // Introspection answers name the user and their groups, as Ipsilon's TokenInfo does.
  async extraTokenClaims(_ctx, token) {
    if (!token.accountId || !accounts[token.accountId]) return undefined;
    return { username: token.accountId, groups: accounts[token.accountId].groups ?? [] };
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    revocation: { enabled: true },
  },
  ttl: { AccessToken: 3600, Grant: 86400 },
});

// RFC 6749 §4.3, for tests only. `expires_in` lets a test ask for a short-lived token.
async function passwordGrant(ctx) {
  const { username, password, scope, expires_in: expiresIn } = ctx.oidc.params;
  const account = accounts[username];
  if (!account || account.password !== password) {
    throw new errors.InvalidGrant('wrong username or password');
  }
  const scopes = (scope || 'openid profile email groups').split(' ');
  const { client } = ctx.oidc;
  const grant = new provider.Grant({ accountId: username, clientId: client.clientId });
  grant.addOIDCScope(scopes.join(' '));
  const grantId = await grant.save();
  const token = new provider.AccessToken({
    accountId: username,
    client,
    grantId,
    scope: scopes.join(' '),
  });
  if (expiresIn) token.expiresIn = Number(expiresIn);
  const value = await token.save();
  ctx.body = {
    access_token: value,
    token_type: 'Bearer',
    expires_in: token.expiration,
    scope: token.scope,
  };
}
provider.registerGrantType('password', passwordGrant, ['username', 'password', 'scope', 'expires_in']);

provider.listen(Number(port), '127.0.0.1', () => {
  console.log('ready');
});
