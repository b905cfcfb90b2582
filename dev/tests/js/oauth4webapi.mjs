// A relying party built on oauth4webapi (a standard OAuth 2 / OIDC client library), run by
// dev/tests/developer_surface.rs. Every command prints one JSON object on stdout.
//
//   discover <issuer> <oauth2|oidc>      the authorization server metadata, as the library found it
//   start                                 PKCE verifier and challenge, state and nonce from the library
//   redeem <issuer> <alg> <client_id> <redirect_uri> <callback_url> <state> <nonce> <verifier>
//                                         validates the callback and redeems its code (ID token checked)
import * as oauth from 'oauth4webapi'

const [command, ...args] = process.argv.slice(2)

async function discover(issuerUrl, algorithm) {
  const issuer = new URL(issuerUrl)
  const response = await oauth.discoveryRequest(issuer, { algorithm })
  return { url: response.url, as: await oauth.processDiscoveryResponse(issuer, response) }
}

async function main() {
  switch (command) {
    case 'discover': {
      const [issuer, algorithm] = args
      const { url, as } = await discover(issuer, algorithm)
      return { fetched: url, issuer: as.issuer, authorization_endpoint: as.authorization_endpoint, token_endpoint: as.token_endpoint, jwks_uri: as.jwks_uri }
    }
    case 'start': {
      const verifier = oauth.generateRandomCodeVerifier()
      return {
        verifier,
        challenge: await oauth.calculatePKCECodeChallenge(verifier),
        state: oauth.generateRandomState(),
        nonce: oauth.generateRandomNonce(),
      }
    }
    case 'redeem': {
      const [issuer, algorithm, clientId, redirectUri, callback, state, nonce, verifier] = args
      const { as } = await discover(issuer, algorithm)
      const client = { client_id: clientId }
      const params = oauth.validateAuthResponse(as, client, new URL(callback), state)
      const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, verifier)
      const result = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: nonce, requireIdToken: true })
      const claims = oauth.getValidatedIdTokenClaims(result)
      return { sub: claims.sub, iss: claims.iss, aud: claims.aud, token_type: result.token_type, scope: result.scope }
    }
    default:
      throw new Error(`unknown command ${command}`)
  }
}

main().then(
  (out) => console.log(JSON.stringify(out)),
  (e) => {
    console.error(e?.stack ?? String(e), e?.cause ? JSON.stringify(e.cause) : '')
    process.exit(1)
  },
)
