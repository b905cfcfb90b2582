// A standard OpenID provider (panva's oidc-provider) for identity/tests/federation.rs.
// Usage: node op.mjs <port> <client_id> <client_secret> <redirect_uri>
// Prints one line of JSON ({"issuer": …}) once it listens. Its development login form takes any
// login as the account id; the accounts below say what each one's ID token claims.
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const accounts = {
  grace: { email: 'grace@panva.example', email_verified: true, name: 'Grace Hopper' },
  henry: { email: 'henry@panva.example', email_verified: false, name: 'Henry' },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  cookies: { keys: ['tansu-federation-test-cookie-key'] },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id, ...(accounts[id] || {}) }; } };
  },
  // Consent is the user's business at a real provider; here every scope is granted at once.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(JSON.stringify({ issuer }));
});
