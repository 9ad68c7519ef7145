// A HAIP wallet built on the OpenWallet Foundation's libraries, run against a live Thiqa.
//
//   node wallet.mjs present WALLET_URI CREDENTIAL HOLDER_JWK ROOT_PEM
//     parse the openid4vp:// link, fetch the signed Request Object (x509_hash), check its
//     x5c chain against ROOT_PEM and its signature, make an SD-JWT VC presentation of exactly
//     the requested claims (@sd-jwt/sd-jwt-vc, KB-JWT to the request's nonce and client_id),
//     encrypt the answer to the request's key (direct_post.jwt) and post it.
//     Prints {"status", "body", "client_id", "response_mode"}.
//   node wallet.mjs verify CREDENTIAL ROOT_PEM
//     verify an issued SD-JWT VC through its x5c header, chained to ROOT_PEM.
//     Prints {"payload", "disclosed"}.
//
// Certificates are checked with node's X509Certificate; JOSE by `jose`. Nothing here trusts a
// key the token names unless its chain leads to ROOT_PEM.
import { X509Certificate, createHash, createPublicKey, randomBytes, sign, createPrivateKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { CompactEncrypt, compactVerify, importJWK } from 'jose'
import { Openid4vpClient } from '@openid4vc/openid4vp'
import { setGlobalConfig } from '@openid4vc/oauth2'
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc'

// The test server listens on http://127.0.0.1; production verifiers are https.
setGlobalConfig({ allowInsecureUrls: true })

const b64url = (data) => Buffer.from(data).toString('base64url')
const sha = (alg) => (data) => createHash(alg.replace('-', '').toLowerCase()).update(data).digest()

function certificateFromX5c(entry) {
  return new X509Certificate(Buffer.from(entry, 'base64'))
}

// The chain, leaf first, must end under the root, each link signed by the next, all in date.
function checkChain(x5c, rootPem) {
  const root = new X509Certificate(readFileSync(rootPem))
  const chain = x5c.map(certificateFromX5c)
  const now = new Date()
  for (const certificate of [...chain, root]) {
    if (new Date(certificate.validFrom) > now || new Date(certificate.validTo) < now) {
      throw new Error('certificate out of its validity period')
    }
  }
  for (let i = 0; i < chain.length; i++) {
    const issuer = chain[i + 1] ?? root
    if (!chain[i].checkIssued(issuer) || !chain[i].verify(issuer.publicKey)) {
      throw new Error('the x5c chain does not lead to the trusted root')
    }
  }
  return chain[0]
}

function sanNames(certificate, kind) {
  return (certificate.subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith(`${kind}:`))
    .map((entry) => entry.slice(kind.length + 1))
}

async function presentRequest([walletUri, credential, holderJwkText, rootPem]) {
  const holderJwk = JSON.parse(holderJwkText)
  const holderKey = createPrivateKey({ key: holderJwk, format: 'jwk' })
  const callbacks = {
    fetch,
    hash: (data, alg) => sha(alg)(data),
    getX509CertificateMetadata: (x5cEntry) => {
      const certificate = certificateFromX5c(x5cEntry)
      return { sanDnsNames: sanNames(certificate, 'DNS'), sanUriNames: sanNames(certificate, 'URI') }
    },
    verifyJwt: async (signer, { compact }) => {
      if (signer.method !== 'x5c') return { verified: false }
      const leaf = checkChain(signer.x5c, rootPem)
      const publicJwk = leaf.publicKey.export({ format: 'jwk' })
      try {
        await compactVerify(compact, await importJWK(publicJwk, signer.alg))
        return { verified: true, signerJwk: publicJwk }
      } catch {
        return { verified: false }
      }
    },
    encryptJwe: async (encryptor, data) => {
      const jwk = encryptor.publicJwk
      const header = { alg: encryptor.alg, enc: encryptor.enc, kid: jwk.kid }
      if (encryptor.apu) header.apu = encryptor.apu
      if (encryptor.apv) header.apv = encryptor.apv
      const jwe = await new CompactEncrypt(new TextEncoder().encode(data))
        .setProtectedHeader(header)
        .encrypt(await importJWK(jwk, encryptor.alg))
      return { encryptionJwk: jwk, jwe }
    },
    decryptJwe: async () => ({ decrypted: false }),
    signJwt: async () => { throw new Error('the wallet signs nothing but its KB-JWT') },
  }
  const client = new Openid4vpClient({ callbacks })
  const parsed = client.parseOpenid4vpAuthorizationRequest({ authorizationRequest: walletUri })
  const resolved = await client.resolveOpenId4vpAuthorizationRequest({
    authorizationRequestPayload: parsed.params,
  })
  const request = resolved.authorizationRequestPayload
  if (resolved.client.prefix !== 'x509_hash' || !resolved.jar) {
    throw new Error(`expected a signed x509_hash request, got ${resolved.client.prefix}`)
  }
  // Disclose exactly the claims of the one DCQL credential query.
  const query = request.dcql_query.credentials[0]
  const frame = {}
  for (const { path } of query.claims ?? []) {
    let node = frame
    path.forEach((name, i) => {
      if (i === path.length - 1) node[name] = true
      else node = node[name] ??= {}
    })
  }
  const sdjwt = new SDJwtVcInstance({
    hasher: sha('sha-256'),
    kbSignAlg: 'ES256',
    kbSigner: (data) => b64url(sign('sha256', Buffer.from(data), { key: holderKey, dsaEncoding: 'ieee-p1363' })),
    saltGenerator: () => b64url(randomBytes(16)),
  })
  const presentation = await sdjwt.present(credential, frame, {
    kb: { payload: { iat: Math.floor(Date.now() / 1000), aud: request.client_id, nonce: request.nonce } },
  })
  const response = await client.createOpenid4vpAuthorizationResponse({
    authorizationRequestPayload: request,
    authorizationResponsePayload: { vp_token: { [query.id]: [presentation] } },
    jarm: {
      encryption: { nonce: b64url(randomBytes(16)) },
      serverMetadata: {
        authorization_encryption_alg_values_supported: ['ECDH-ES'],
        authorization_encryption_enc_values_supported: ['A128GCM', 'A256GCM'],
      },
    },
  })
  const submitted = await client.submitOpenid4vpAuthorizationResponse({
    authorizationRequestPayload: request,
    authorizationResponsePayload: response.authorizationResponsePayload,
    jarm: response.jarm ? { responseJwt: response.jarm.responseJwt } : undefined,
  })
  const text = await submitted.response.text()
  console.log(JSON.stringify({
    status: submitted.response.status,
    body: text ? JSON.parse(text) : {},
    client_id: request.client_id,
    response_mode: submitted.responseMode,
  }))
}

async function verifyCredential([credential, rootPem]) {
  const header = JSON.parse(Buffer.from(credential.split('.')[0], 'base64url'))
  const leaf = checkChain(header.x5c, rootPem)
  const publicKey = createPublicKey(leaf.publicKey.export({ format: 'pem', type: 'spki' }))
  const sdjwt = new SDJwtVcInstance({
    hasher: sha('sha-256'),
    verifier: async (data, signature) => {
      const { verify } = await import('node:crypto')
      return verify('sha256', Buffer.from(data), { key: publicKey, dsaEncoding: 'ieee-p1363' },
                    Buffer.from(signature, 'base64url'))
    },
  })
  const result = await sdjwt.verify(credential)
  if (!sanNames(leaf, 'URI').includes(result.payload.iss)) {
    throw new Error('the leaf certificate does not name the issuer')
  }
  console.log(JSON.stringify({ payload: result.payload, header: result.header }))
}

const [mode, ...args] = process.argv.slice(2)
try {
  if (mode === 'present') await presentRequest(args)
  else if (mode === 'verify') await verifyCredential(args)
  else throw new Error(`unknown mode ${mode}`)
} catch (error) {
  console.error(error?.stack ?? String(error))
  process.exit(1)
}
