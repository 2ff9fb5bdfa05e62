// A real OpenID Connect provider for NeoMesh's single sign-on tests: node-oidc-provider on loopback.
//
// Started by tests/peers/oidc.py with OIDC_TEST_PORT and OIDC_TEST_CONFIG (JSON: "clients", the
// client registrations, and "accounts", each account's claims by its login). Sign-in is
// node-oidc-provider's development interaction (any password); consent is granted for the
// registered clients (a first-party application). PKCE is required of every client. An account's
// "amr" (e.g. ["pwd", "mfa"]) is what its ID tokens say of how it signed in.
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_TEST_PORT);
const config = JSON.parse(process.env.OIDC_TEST_CONFIG);
const issuer = `http://127.0.0.1:${port}`;
const accounts = config.accounts || {};

const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head><body>${body}</body></html>`;

const provider = new Provider(issuer, {
  clients: config.clients,
  // Unknown logins are accounts with no claims beyond their subject: NeoMesh must refuse them.
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        const { amr, ...claims } = accounts[id] || {};
        return { sub: id, ...claims };
      },
    };
  },
  claims: {
    // amr with the openid scope: ID tokens say how the person signed in (the session's amr).
    openid: ['sub', 'amr'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.body = page('Sign out', `<h1>Sign out of the test provider?</h1>${form}<button type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out', '<h1>Signed out of the test provider</h1>');
      },
    },
  },
  // A first-party client: the grant is given without a consent page.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile groups');
    await grant.save();
    return grant;
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<h1>Provider error</h1><pre>${JSON.stringify(out).replace(/</g, '&lt;')}</pre>`);
  },
});

// An account's "amr" (how it signed in, RFC 8176) goes into its sessions and so its ID tokens:
// the development sign-in page itself records none.
const interactionFinished = provider.interactionFinished.bind(provider);
provider.interactionFinished = (req, res, result, options) => {
  const amr = result?.login && accounts[result.login.accountId]?.amr;
  if (amr) result.login.amr = amr;
  return interactionFinished(req, res, result, options);
};

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
