// A wallet built on @openid4vc/openid4vci (OpenWallet Foundation), run against a live Thiqa:
// resolve the offer, read the metadata, redeem the pre-authorized code, fetch a nonce, sign
// a jwt key proof and retrieve the credential. Node's own crypto signs (ES256, P-256).
// Usage: node wallet.mjs OFFER_URI TX_CODE
// Prints {"credential", "private_jwk", "version"}: the key is a throwaway test key, handed to
// the test so it can present the credential and show the binding holds.
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto'
import { Openid4vciClient, setGlobalConfig } from '@openid4vc/openid4vci'
import { clientAuthenticationAnonymous } from '@openid4vc/oauth2'

const [offerUri, txCode] = process.argv.slice(2)
// The test server listens on http://127.0.0.1; production issuers are https.
setGlobalConfig({ allowInsecureUrls: true })

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const publicJwk = publicKey.export({ format: 'jwk' })
const b64url = (data) => Buffer.from(data).toString('base64url')

const callbacks = {
  fetch,
  generateRandom: (length) => randomBytes(length),
  hash: (data, alg) => createHash(alg.replace('-', '').toLowerCase()).update(data).digest(),
  clientAuthentication: clientAuthenticationAnonymous(),
  signJwt: async (signer, { header, payload }) => {
    if (signer.method !== 'jwk' || signer.alg !== 'ES256') throw new Error('unexpected signer')
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`
    const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' })
    return { jwt: `${input}.${b64url(signature)}`, signerJwk: publicJwk }
  },
}

const client = new Openid4vciClient({ callbacks })
const credentialOffer = await client.resolveCredentialOffer(offerUri)
const issuerMetadata = await client.resolveIssuerMetadata(credentialOffer.credential_issuer)
const { accessTokenResponse } = await client.retrievePreAuthorizedCodeAccessTokenFromOffer({
  credentialOffer, issuerMetadata, txCode,
})
const { c_nonce } = await client.requestNonce({ issuerMetadata })
const credentialConfigurationId = credentialOffer.credential_configuration_ids[0]
const { jwt } = await client.createCredentialRequestJwtProof({
  issuerMetadata, credentialConfigurationId, nonce: c_nonce,
  signer: { method: 'jwk', alg: 'ES256', publicJwk },
})
const result = await client.retrieveCredentials({
  issuerMetadata, credentialConfigurationId, proofs: { jwt: [jwt] },
  accessToken: accessTokenResponse.access_token,
})
if (!result.ok) {
  console.error(JSON.stringify(result.credentialErrorResponseResult ?? result.response?.status))
  process.exit(1)
}
const credentials = result.credentialResponse.credentials
console.log(JSON.stringify({ credential: credentials[0].credential,
                             private_jwk: privateKey.export({ format: 'jwk' }),
                             version: issuerMetadata.originalDraftVersion }))
