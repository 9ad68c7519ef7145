// Thiqa demo page: an issuer console, a verifier console and a browser wallet, in one ES
// module with no dependencies. Everything talks to the Thiqa server that served this page,
// through its public API, exactly as any other client would:
//
// * the consoles call /v1/... with the API key the tester typed (kept in sessionStorage of
//   this tab, sent only to this origin: the page's CSP allows connections to 'self' only);
// * the wallet runs OpenID4VCI (pre-authorized code) and OpenID4VP (direct_post) itself, with
//   a WebCrypto P-256 key made per credential; its private key is not extractable and lives
//   in IndexedDB, which can store a CryptoKey without ever exposing it.
//
// The verifier learns its verdict by long-polling GET /v1/presentation-requests/{id}?wait=N
// with fetch: the server also offers an event stream, but EventSource cannot send the
// Authorization header the API key needs, and putting the key in a URL would leak it into
// logs. A long-poll answers the moment the wallet's presentation is judged, so it is as live.

const PRE_AUTH = "urn:ietf:params:oauth:grant-type:pre-authorized_code";
const LANGS = ["ar", "fr", "en"];
const KEY_STORAGE = "thiqa-demo-api-key";
const LANG_STORAGE = "thiqa-demo-lang";
const WAIT_SECONDS = 25;
const DEFAULT_ASK = ["given_name", "given_name#ar", "family_name", "family_name#ar"];

// Every UI string, by language. Claim labels are not here: they come from the credential
// type's own metadata (GET {vct}), as a wallet or verifier in the field would read them.
const STRINGS = {
  en: {
    pageTitle: "Thiqa — trusted verification demo",
    pageHeading: "Trusted verification demo",
    skip: "Skip to the demo",
    intro: "Issue a national identity credential to a synthetic citizen, keep it in the " +
      "browser wallet, and verify it, all against this Thiqa server.",
    language: "Language",
    apiKey: "API key",
    apiKeyHint: "Kept in this tab only and sent only to this Thiqa server. Needs the scopes " +
      "issue, revoke and verify.",
    issuerHeading: "Issuer console",
    issuerNote: "The issuing authority offers a credential; the citizen collects it with a " +
      "wallet.",
    citizen: "Citizen (synthetic)",
    withPin: "Protect the offer with a PIN",
    createOffer: "Create the offer",
    offerHeading: "Credential offer",
    offerQrAlt: "QR code of the credential offer",
    offerUri: "Offer link",
    pin: "PIN",
    pinNote: "Give the PIN to the citizen apart from the QR code.",
    openInWallet: "Open in the browser wallet",
    offerCreated: "Offer created. Waiting for the wallet to collect the credential…",
    offerIssued: "The wallet has collected the credential.",
    offerGone: "The offer expired or was withdrawn: make a new one.",
    offerFailed: "Signing failed after the wallet's request: make a new offer.",
    issuedHeading: "Issued credential",
    credentialId: "Credential id",
    status: "Status",
    suspend: "Suspend",
    reinstate: "Reinstate",
    revoke: "Revoke",
    refresh: "Refresh",
    status_valid: "Active",
    status_suspended: "Suspended",
    status_revoked: "Revoked",
    statusNow: "The credential is now: {status}.",
    walletHeading: "Browser wallet",
    walletNote: "A test wallet in this page: its keys are made here (WebCrypto, P-256) and " +
      "never leave the browser.",
    receiveHeading: "Receive a credential",
    walletOffer: "Credential offer link",
    walletPin: "PIN (if the offer has one)",
    accept: "Accept the offer",
    myCredentials: "Credentials in the wallet",
    noCredentials: "No credential yet.",
    forget: "Empty the wallet",
    walletEmptied: "The wallet is empty.",
    validUntil: "Valid until {date}",
    received: "Credential received and stored in the wallet.",
    needPin: "This offer is protected by a PIN: type it in.",
    badOffer: "This is not a credential offer link.",
    presentHeading: "Answer a verifier",
    walletRequest: "Presentation request link",
    openRequest: "Open the request",
    badRequest: "This is not a presentation request this wallet can answer.",
    noMatching: "The wallet holds no credential of the requested type.",
    chooseClaims: "Choose what to share",
    verifierName: "Verifier",
    purpose: "Purpose",
    share: "Share",
    decline: "Decline",
    presented: "Presentation sent; the verifier accepted it.",
    presentedRefused: "Presentation sent; the verifier did not accept it ({codes}).",
    declined: "You declined the request.",
    verifierHeading: "Verifier console",
    verifierNote: "A government app asks the citizen's wallet for some claims and receives " +
      "Thiqa's verdict.",
    askFor: "Claims to ask for",
    purposeDefault: "Check your identity for the social benefits office",
    createRequest: "Create the request",
    createDcRequest: "Ask through the browser (Digital Credentials API)",
    requestHeading: "Presentation request",
    requestQrAlt: "QR code of the presentation request",
    requestUri: "Request link",
    requestCreated: "Request created. Waiting for the wallet…",
    requestInBrowser: "Request sent to the wallet through the browser (Digital Credentials API)…",
    verdictHeading: "Verdict",
    waiting: "Waiting for the wallet's answer…",
    valid: "Valid",
    invalid: "Not valid",
    expired: "The request expired without an answer.",
    credentialStatus: "Credential status",
    receivedClaims: "Received claims",
    claim: "Claim",
    value: "Value",
    footer: "Demonstration only: synthetic citizens, test wallet. Operators turn this page " +
      "off in production (THIQA_DEMO_UI=false).",
    needApiKey: "Type an API key first.",
    needClaims: "Choose at least one claim.",
    refused: "Thiqa refused: {detail}",
    networkError: "The server could not be reached.",
    noCrypto: "This browser offers no WebCrypto here (use https, or http://localhost): the " +
      "wallet cannot make keys.",
    originWarning: "Open this page at {url}: credentials and requests name that address, " +
      "and this page may only talk to its own.",
    noCitizens: "This server has no seeds/citizens.json: there is no synthetic citizen to " +
      "pick.",
    apiKeyHow: "Make one in the server's terminal (it is shown once):",
    apiKeyCheckout: "or, from a Thiqa checkout:",
    statusUnknown: "Status unknown",
    // Every documented code (README), as the page shows it; the server's English text is the fallback.
    code_audience_mismatch: "The key-binding JWT was made for another audience.",
    code_bad_request: "The request is malformed.",
    code_client_exists: "A client with this name exists.",
    code_client_not_found: "No client with this name.",
    code_credential_not_found: "No credential with this id.",
    code_credential_request_denied: "The issuer refused to issue the credential.",
    code_expired: "The credential has expired.",
    code_insufficient_scope: "This API key lacks the scope this needs.",
    code_internal_error: "Thiqa failed unexpectedly; the server log has the request id.",
    code_invalid_claims: "The claims do not fit the credential type.",
    code_invalid_credential_request: "The wallet's credential request is invalid.",
    code_invalid_disclosure: "A disclosure is malformed, unreferenced or repeated.",
    code_invalid_encryption_parameters: "Encrypted responses are not supported.",
    code_invalid_grant: "The offer's code or PIN is wrong, used or expired.",
    code_invalid_holder_key: "The holder's key is not an accepted public key.",
    code_invalid_json: "The body is not strict JSON.",
    code_invalid_key_binding: "The key-binding JWT is invalid.",
    code_invalid_nonce: "The wallet's nonce is unknown or used: get a new one.",
    code_invalid_proof: "The wallet's key proof is invalid.",
    code_invalid_request: "The request is invalid.",
    code_invalid_signature: "The issuer's signature does not verify.",
    code_invalid_status_reference: "The credential's status entry is not one this service holds.",
    code_invalid_token: "The wallet's access token is invalid or expired.",
    code_invalid_vp_token: "The wallet's answer does not hold exactly one presentation.",
    code_key_binding_required: "A key-binding JWT is required.",
    code_key_revoked: "The issuer revoked the key that signed this credential.",
    code_malformed: "This is not a well-formed SD-JWT.",
    code_malformed_response: "The wallet's answer is malformed.",
    code_method_not_allowed: "This path does not take this method.",
    code_missing_claims: "A requested claim was not disclosed.",
    code_nonce_mismatch: "The key-binding JWT was made for another nonce.",
    code_nonce_replayed: "This request has already been answered.",
    code_not_acceptable: "No answer in a format the request accepts.",
    code_not_found: "Nothing at this path.",
    code_not_yet_valid: "The credential is not valid yet.",
    code_offer_not_found: "No such offer, or it has expired.",
    code_presentation_rejected: "The verifier checked the presentation and refused it.",
    code_presentation_request_not_found: "No such presentation request.",
    code_rate_limited: "Too many requests for this API key: wait a moment.",
    code_request_answered: "This presentation request has been answered.",
    code_request_expired: "This request has expired.",
    code_request_too_large: "The request body is too large.",
    code_revoked: "The credential has been revoked.",
    code_state_mismatch: "The answer's state is not this request's.",
    code_status_conflict: "The credential cannot change to this status.",
    code_status_list_not_found: "No such status list.",
    code_status_unavailable: "The credential's status could not be read.",
    code_store_unavailable: "Thiqa's store cannot answer right now.",
    code_suspended: "The credential is suspended.",
    code_temporarily_unavailable: "The verifier cannot answer right now.",
    code_too_large: "The presentation is too large.",
    code_unauthenticated: "A valid API key is required.",
    code_unknown_credential_configuration: "The issuer does not offer this credential.",
    code_unknown_issuer: "The issuer is not trusted.",
    code_unknown_key: "The issuer has no key with this id.",
    code_unsupported_algorithm: "The signature algorithm is not accepted.",
    code_unsupported_grant_type: "The token endpoint does not take this grant.",
    code_unsupported_media_type: "The body must be JSON.",
    code_unsupported_vct: "This credential type is not issued here.",
    code_untrusted_type: "The issuer is not trusted for this credential type.",
    code_vct_mismatch: "The credential is not of the requested type.",
    code_wallet_error: "The wallet declined or failed.",
    code_wrong_type: "The JWT's typ is not dc+sd-jwt.",
    code_certificate_expired: "A certificate of the issuer's chain has expired.",
    code_certificate_mismatch: "The issuer's certificate names another issuer.",
    code_certificate_not_yet_valid: "A certificate of the issuer's chain is not valid yet.",
    code_invalid_certificate_chain: "The issuer's certificate chain is invalid.",
    code_untrusted_certificate: "The issuer's certificate chain leads to no trusted root.",
    code_cbor_duplicate_key: "The mdoc's CBOR repeats a map key.",
    code_cbor_indefinite_length: "The mdoc's CBOR uses an indefinite length where a definite one is required.",
    code_cbor_length_too_large: "The mdoc's CBOR declares a length or count over the limit.",
    code_cbor_malformed: "The mdoc's CBOR is malformed.",
    code_cbor_too_deep: "The mdoc's CBOR is nested too deeply.",
    code_cbor_trailing_bytes: "The mdoc's CBOR has bytes after its end.",
    code_cbor_truncated: "The mdoc's CBOR ends too early.",
    code_cbor_wrong_tag: "The mdoc's CBOR carries a tag that is not allowed there.",
    code_cbor_wrong_type: "The mdoc's CBOR has an item of the wrong type.",
    code_device_key_required: "An mdoc needs the wallet's device key.",
    code_digest_mismatch: "A returned element does not match its digest in the signed MSO.",
    code_doctype_mismatch: "The mdoc is not of the requested document type.",
    code_element_not_in_mso: "A returned element is not in the signed MSO.",
    code_invalid_device_signature: "The wallet's device signature over this request does not verify.",
    code_mdoc_malformed: "The mdoc presentation is malformed.",
    code_unsupported_format: "This credential format is not supported.",
    code_access_certificate_missing: "A signed request needs an access certificate; this server has none.",
    code_change_not_replicated: "The change did not reach enough Redis replicas in time: repeat it.",
    code_decryption_failed: "The wallet's encrypted answer cannot be decrypted for this request.",
    code_encryption_required: "This request takes encrypted answers only.",
    code_keyring_unavailable: "The issuer's keys cannot be loaded right now.",
    code_origin_mismatch: "The answer comes from an origin this request does not expect.",
    code_response_code_mismatch: "The response code does not match this request.",
    code_response_too_large: "The wallet's answer is too large.",
    code_too_many_streams: "Too many open waits for this API key: close one or wait.",
    code_unsupported_encryption: "The answer's encryption is not one this request accepts.",
  },
  fr: {
    pageTitle: "Thiqa — démonstration de vérification de confiance",
    pageHeading: "Démonstration de vérification de confiance",
    skip: "Aller à la démonstration",
    intro: "Délivrez une attestation d'identité nationale à un citoyen fictif, gardez-la " +
      "dans le portefeuille du navigateur et vérifiez-la, auprès de ce serveur Thiqa.",
    language: "Langue",
    apiKey: "Clé d'API",
    apiKeyHint: "Conservée dans cet onglet seulement et envoyée uniquement à ce serveur " +
      "Thiqa. Portées nécessaires : issue, revoke et verify.",
    issuerHeading: "Console de l'émetteur",
    issuerNote: "L'autorité émettrice propose une attestation ; le citoyen la récupère avec " +
      "un portefeuille.",
    citizen: "Citoyen (fictif)",
    withPin: "Protéger l'offre par un code PIN",
    createOffer: "Créer l'offre",
    offerHeading: "Offre d'attestation",
    offerQrAlt: "Code QR de l'offre d'attestation",
    offerUri: "Lien de l'offre",
    pin: "Code PIN",
    pinNote: "Remettez le code PIN au citoyen séparément du code QR.",
    openInWallet: "Ouvrir dans le portefeuille du navigateur",
    offerCreated: "Offre créée. En attente de la récupération par le portefeuille…",
    offerIssued: "Le portefeuille a récupéré l'attestation.",
    offerGone: "L'offre a expiré ou a été retirée : créez-en une nouvelle.",
    offerFailed: "La signature a échoué après la demande du portefeuille : créez une " +
      "nouvelle offre.",
    issuedHeading: "Attestation délivrée",
    credentialId: "Identifiant de l'attestation",
    status: "Statut",
    suspend: "Suspendre",
    reinstate: "Rétablir",
    revoke: "Révoquer",
    refresh: "Actualiser",
    status_valid: "Active",
    status_suspended: "Suspendue",
    status_revoked: "Révoquée",
    statusNow: "L'attestation est maintenant : {status}.",
    walletHeading: "Portefeuille du navigateur",
    walletNote: "Un portefeuille de test dans cette page : ses clés sont créées ici " +
      "(WebCrypto, P-256) et ne quittent jamais le navigateur.",
    receiveHeading: "Recevoir une attestation",
    walletOffer: "Lien de l'offre d'attestation",
    walletPin: "Code PIN (si l'offre en a un)",
    accept: "Accepter l'offre",
    myCredentials: "Attestations dans le portefeuille",
    noCredentials: "Aucune attestation pour l'instant.",
    forget: "Vider le portefeuille",
    walletEmptied: "Le portefeuille est vide.",
    validUntil: "Valable jusqu'au {date}",
    received: "Attestation reçue et rangée dans le portefeuille.",
    needPin: "Cette offre est protégée par un code PIN : saisissez-le.",
    badOffer: "Ce n'est pas un lien d'offre d'attestation.",
    presentHeading: "Répondre à un vérificateur",
    walletRequest: "Lien de la demande de présentation",
    openRequest: "Ouvrir la demande",
    badRequest: "Ce n'est pas une demande de présentation à laquelle ce portefeuille sait " +
      "répondre.",
    noMatching: "Le portefeuille ne contient aucune attestation du type demandé.",
    chooseClaims: "Choisissez ce que vous partagez",
    verifierName: "Vérificateur",
    purpose: "Finalité",
    share: "Partager",
    decline: "Refuser",
    presented: "Présentation envoyée ; le vérificateur l'a acceptée.",
    presentedRefused: "Présentation envoyée ; le vérificateur ne l'a pas acceptée ({codes}).",
    declined: "Vous avez refusé la demande.",
    verifierHeading: "Console du vérificateur",
    verifierNote: "Une application publique demande quelques données au portefeuille du " +
      "citoyen et reçoit le verdict de Thiqa.",
    askFor: "Données demandées",
    purposeDefault: "Vérifier votre identité pour le bureau des aides sociales",
    createRequest: "Créer la demande",
    createDcRequest: "Demander par le navigateur (API Digital Credentials)",
    requestHeading: "Demande de présentation",
    requestQrAlt: "Code QR de la demande de présentation",
    requestUri: "Lien de la demande",
    requestCreated: "Demande créée. En attente du portefeuille…",
    requestInBrowser: "Demande envoyée au portefeuille par le navigateur (API Digital Credentials)…",
    verdictHeading: "Verdict",
    waiting: "En attente de la réponse du portefeuille…",
    valid: "Valide",
    invalid: "Non valide",
    expired: "La demande a expiré sans réponse.",
    credentialStatus: "Statut de l'attestation",
    receivedClaims: "Données reçues",
    claim: "Donnée",
    value: "Valeur",
    footer: "Démonstration uniquement : citoyens fictifs, portefeuille de test. Les " +
      "opérateurs désactivent cette page en production (THIQA_DEMO_UI=false).",
    needApiKey: "Saisissez d'abord une clé d'API.",
    needClaims: "Choisissez au moins une donnée.",
    refused: "Refus de Thiqa : {detail}",
    networkError: "Le serveur est injoignable.",
    noCrypto: "Ce navigateur n'offre pas WebCrypto ici (utilisez https ou " +
      "http://localhost) : le portefeuille ne peut pas créer de clés.",
    originWarning: "Ouvrez cette page à l'adresse {url} : attestations et demandes portent " +
      "cette adresse, et la page ne peut parler qu'à la sienne.",
    noCitizens: "Ce serveur n'a pas de seeds/citizens.json : aucun citoyen fictif à choisir.",
    apiKeyHow: "Créez-en une dans le terminal du serveur (elle n'est affichée qu'une fois) :",
    apiKeyCheckout: "ou, depuis un dépôt Thiqa :",
    statusUnknown: "Statut inconnu",
    // Every documented code (README), as the page shows it; the server's English text is the fallback.
    code_audience_mismatch: "Le JWT de liaison de clé a été fait pour un autre destinataire.",
    code_bad_request: "La requête est mal formée.",
    code_client_exists: "Un client de ce nom existe déjà.",
    code_client_not_found: "Aucun client de ce nom.",
    code_credential_not_found: "Aucune attestation avec cet identifiant.",
    code_credential_request_denied: "L'émetteur a refusé de délivrer l'attestation.",
    code_expired: "L'attestation a expiré.",
    code_insufficient_scope: "Cette clé d'API n'a pas la portée nécessaire.",
    code_internal_error: "Thiqa a échoué de façon inattendue ; le journal du serveur porte l'identifiant de la requête.",
    code_invalid_claims: "Les données ne conviennent pas au type d'attestation.",
    code_invalid_credential_request: "La demande d'attestation du portefeuille n'est pas valide.",
    code_invalid_disclosure: "Une divulgation est mal formée, non référencée ou répétée.",
    code_invalid_encryption_parameters: "Les réponses chiffrées ne sont pas prises en charge.",
    code_invalid_grant: "Le code de l'offre ou le code PIN est faux, déjà utilisé ou expiré.",
    code_invalid_holder_key: "La clé du titulaire n'est pas une clé publique acceptée.",
    code_invalid_json: "Le corps n'est pas du JSON strict.",
    code_invalid_key_binding: "Le JWT de liaison de clé n'est pas valide.",
    code_invalid_nonce: "Le nonce du portefeuille est inconnu ou déjà utilisé : demandez-en un nouveau.",
    code_invalid_proof: "La preuve de clé du portefeuille n'est pas valide.",
    code_invalid_request: "La requête n'est pas valide.",
    code_invalid_signature: "La signature de l'émetteur n'est pas vérifiée.",
    code_invalid_status_reference: "L'entrée de statut de l'attestation n'est pas tenue par ce service.",
    code_invalid_token: "Le jeton d'accès du portefeuille n'est pas valide ou a expiré.",
    code_invalid_vp_token: "La réponse du portefeuille ne contient pas exactement une présentation.",
    code_key_binding_required: "Un JWT de liaison de clé est exigé.",
    code_key_revoked: "L'émetteur a révoqué la clé qui a signé cette attestation.",
    code_malformed: "Ce n'est pas un SD-JWT bien formé.",
    code_malformed_response: "La réponse du portefeuille est mal formée.",
    code_method_not_allowed: "Ce chemin n'accepte pas cette méthode.",
    code_missing_claims: "Une donnée demandée n'a pas été divulguée.",
    code_nonce_mismatch: "Le JWT de liaison de clé a été fait pour un autre nonce.",
    code_nonce_replayed: "Cette demande a déjà reçu une réponse.",
    code_not_acceptable: "Aucune réponse dans un format que la requête accepte.",
    code_not_found: "Rien à ce chemin.",
    code_not_yet_valid: "L'attestation n'est pas encore valable.",
    code_offer_not_found: "Offre inconnue ou expirée.",
    code_presentation_rejected: "Le vérificateur a contrôlé la présentation et l'a refusée.",
    code_presentation_request_not_found: "Demande de présentation inconnue.",
    code_rate_limited: "Trop de requêtes pour cette clé d'API : patientez un instant.",
    code_request_answered: "Cette demande de présentation a reçu sa réponse.",
    code_request_expired: "Cette demande a expiré.",
    code_request_too_large: "Le corps de la requête est trop volumineux.",
    code_revoked: "L'attestation a été révoquée.",
    code_state_mismatch: "L'état de la réponse n'est pas celui de cette demande.",
    code_status_conflict: "L'attestation ne peut pas passer à ce statut.",
    code_status_list_not_found: "Liste de statuts inconnue.",
    code_status_unavailable: "Le statut de l'attestation n'a pas pu être lu.",
    code_store_unavailable: "Le stockage de Thiqa ne répond pas pour l'instant.",
    code_suspended: "L'attestation est suspendue.",
    code_temporarily_unavailable: "Le vérificateur ne répond pas pour l'instant.",
    code_too_large: "La présentation est trop volumineuse.",
    code_unauthenticated: "Une clé d'API valide est exigée.",
    code_unknown_credential_configuration: "L'émetteur ne propose pas cette attestation.",
    code_unknown_issuer: "L'émetteur n'est pas de confiance.",
    code_unknown_key: "L'émetteur n'a pas de clé avec cet identifiant.",
    code_unsupported_algorithm: "L'algorithme de signature n'est pas accepté.",
    code_unsupported_grant_type: "Le point de jeton n'accepte pas cette autorisation.",
    code_unsupported_media_type: "Le corps doit être du JSON.",
    code_unsupported_vct: "Ce type d'attestation n'est pas délivré ici.",
    code_untrusted_type: "L'émetteur n'est pas de confiance pour ce type d'attestation.",
    code_vct_mismatch: "L'attestation n'est pas du type demandé.",
    code_wallet_error: "Le portefeuille a refusé ou échoué.",
    code_wrong_type: "Le typ du JWT n'est pas dc+sd-jwt.",
    code_certificate_expired: "Un certificat de la chaîne de l'émetteur a expiré.",
    code_certificate_mismatch: "Le certificat de l'émetteur désigne un autre émetteur.",
    code_certificate_not_yet_valid: "Un certificat de la chaîne de l'émetteur n'est pas encore valable.",
    code_invalid_certificate_chain: "La chaîne de certificats de l'émetteur n'est pas valide.",
    code_untrusted_certificate: "La chaîne de certificats de l'émetteur ne mène à aucune racine de confiance.",
    code_cbor_duplicate_key: "Le CBOR du mdoc répète une clé de table.",
    code_cbor_indefinite_length: "Le CBOR du mdoc utilise une longueur indéfinie là où une longueur définie est exigée.",
    code_cbor_length_too_large: "Le CBOR du mdoc déclare une longueur ou un nombre au-delà de la limite.",
    code_cbor_malformed: "Le CBOR du mdoc est mal formé.",
    code_cbor_too_deep: "Le CBOR du mdoc est imbriqué trop profondément.",
    code_cbor_trailing_bytes: "Le CBOR du mdoc a des octets après sa fin.",
    code_cbor_truncated: "Le CBOR du mdoc s'arrête trop tôt.",
    code_cbor_wrong_tag: "Le CBOR du mdoc porte une étiquette non permise à cet endroit.",
    code_cbor_wrong_type: "Le CBOR du mdoc contient un élément du mauvais type.",
    code_device_key_required: "Un mdoc exige la clé d'appareil du portefeuille.",
    code_digest_mismatch: "Un élément renvoyé ne correspond pas à son empreinte dans le MSO signé.",
    code_doctype_mismatch: "Le mdoc n'est pas du type de document demandé.",
    code_element_not_in_mso: "Un élément renvoyé ne figure pas dans le MSO signé.",
    code_invalid_device_signature: "La signature d'appareil du portefeuille sur cette demande n'est pas valide.",
    code_mdoc_malformed: "La présentation mdoc est mal formée.",
    code_unsupported_format: "Ce format d'attestation n'est pas pris en charge.",
    code_access_certificate_missing: "Une demande signée exige un certificat d'accès ; ce serveur n'en a pas.",
    code_change_not_replicated: "La modification n'a pas atteint assez de répliques Redis à temps : recommencez.",
    code_decryption_failed: "La réponse chiffrée du portefeuille ne peut pas être déchiffrée pour cette demande.",
    code_encryption_required: "Cette demande n'accepte que des réponses chiffrées.",
    code_keyring_unavailable: "Les clés de l'émetteur ne peuvent pas être chargées pour l'instant.",
    code_origin_mismatch: "La réponse vient d'une origine que cette demande n'attend pas.",
    code_response_code_mismatch: "Le code de réponse ne correspond pas à cette demande.",
    code_response_too_large: "La réponse du portefeuille est trop volumineuse.",
    code_too_many_streams: "Trop d'attentes ouvertes pour cette clé d'API : fermez-en une ou patientez.",
    code_unsupported_encryption: "Le chiffrement de la réponse n'est pas accepté par cette demande.",
  },
  ar: {
    pageTitle: "ثقة — تجربة التحقق الموثوق",
    pageHeading: "تجربة التحقق الموثوق",
    skip: "الانتقال إلى التجربة",
    intro: "أصدِر وثيقة هوية وطنية لمواطن افتراضي، واحفظها في محفظة المتصفح، ثم تحقّق " +
      "منها، كل ذلك عبر خادم ثقة هذا.",
    language: "اللغة",
    apiKey: "مفتاح الواجهة البرمجية",
    apiKeyHint: "يُحفظ في هذه النافذة فقط ولا يُرسَل إلا إلى خادم ثقة هذا. يلزمه النطاقات " +
      "issue وrevoke وverify.",
    issuerHeading: "منصة الجهة المُصدِرة",
    issuerNote: "تعرض الجهة المُصدِرة وثيقة، ويستلمها المواطن بمحفظته.",
    citizen: "المواطن (افتراضي)",
    withPin: "حماية العرض برمز سري",
    createOffer: "إنشاء العرض",
    offerHeading: "عرض الوثيقة",
    offerQrAlt: "رمز QR لعرض الوثيقة",
    offerUri: "رابط العرض",
    pin: "الرمز السري",
    pinNote: "سلِّم الرمز السري للمواطن بمعزل عن رمز QR.",
    openInWallet: "فتح في محفظة المتصفح",
    offerCreated: "أُنشئ العرض. في انتظار استلام المحفظة للوثيقة…",
    offerIssued: "استلمت المحفظة الوثيقة.",
    offerGone: "انتهت صلاحية العرض أو سُحب: أنشئ عرضًا جديدًا.",
    offerFailed: "فشل التوقيع بعد طلب المحفظة: أنشئ عرضًا جديدًا.",
    issuedHeading: "الوثيقة الصادرة",
    credentialId: "معرّف الوثيقة",
    status: "الحالة",
    suspend: "تعليق",
    reinstate: "إعادة التفعيل",
    revoke: "إلغاء",
    refresh: "تحديث",
    status_valid: "سارية",
    status_suspended: "معلّقة",
    status_revoked: "ملغاة",
    statusNow: "حالة الوثيقة الآن: {status}.",
    walletHeading: "محفظة المتصفح",
    walletNote: "محفظة تجريبية داخل هذه الصفحة: تُنشأ مفاتيحها هنا (WebCrypto، P-256) ولا " +
      "تغادر المتصفح أبدًا.",
    receiveHeading: "استلام وثيقة",
    walletOffer: "رابط عرض الوثيقة",
    walletPin: "الرمز السري (إن وُجد)",
    accept: "قبول العرض",
    myCredentials: "الوثائق في المحفظة",
    noCredentials: "لا توجد وثيقة بعد.",
    forget: "إفراغ المحفظة",
    walletEmptied: "أُفرغت المحفظة.",
    validUntil: "صالحة حتى {date}",
    received: "استُلمت الوثيقة وحُفظت في المحفظة.",
    needPin: "هذا العرض محمي برمز سري: أدخله.",
    badOffer: "هذا ليس رابط عرض وثيقة.",
    presentHeading: "الرد على جهة التحقق",
    walletRequest: "رابط طلب التقديم",
    openRequest: "فتح الطلب",
    badRequest: "هذا ليس طلب تقديم تستطيع هذه المحفظة الرد عليه.",
    noMatching: "لا تحمل المحفظة وثيقة من النوع المطلوب.",
    chooseClaims: "اختر ما تشاركه",
    verifierName: "جهة التحقق",
    purpose: "الغرض",
    share: "مشاركة",
    decline: "رفض",
    presented: "قُدِّمت الوثيقة وقبلتها جهة التحقق.",
    presentedRefused: "قُدِّمت الوثيقة ولم تقبلها جهة التحقق ({codes}).",
    declined: "رفضتَ الطلب.",
    verifierHeading: "منصة جهة التحقق",
    verifierNote: "يطلب تطبيق حكومي من محفظة المواطن بعض المعطيات ويتلقى حكم ثقة.",
    askFor: "المعطيات المطلوبة",
    purposeDefault: "التحقق من هويتك لدى مكتب الدعم الاجتماعي",
    createRequest: "إنشاء الطلب",
    createDcRequest: "الطلب عبر المتصفح (واجهة بيانات الاعتماد الرقمية)",
    requestHeading: "طلب التقديم",
    requestQrAlt: "رمز QR لطلب التقديم",
    requestUri: "رابط الطلب",
    requestCreated: "أُنشئ الطلب. في انتظار المحفظة…",
    requestInBrowser: "أُرسل الطلب إلى المحفظة عبر المتصفح (واجهة بيانات الاعتماد الرقمية)…",
    verdictHeading: "الحكم",
    waiting: "في انتظار رد المحفظة…",
    valid: "صالح",
    invalid: "غير صالح",
    expired: "انتهت صلاحية الطلب دون رد.",
    credentialStatus: "حالة الوثيقة",
    receivedClaims: "المعطيات المستلمة",
    claim: "المعطى",
    value: "القيمة",
    footer: "للتجربة فقط: مواطنون افتراضيون ومحفظة تجريبية. يُعطّل المشغّلون هذه " +
      "الصفحة في بيئة الإنتاج (THIQA_DEMO_UI=false).",
    needApiKey: "أدخل مفتاح الواجهة البرمجية أولًا.",
    needClaims: "اختر معطى واحدًا على الأقل.",
    refused: "رفضت ثقة: {detail}",
    networkError: "تعذّر الاتصال بالخادم.",
    noCrypto: "لا يتيح هذا المتصفح WebCrypto هنا (استعمل https أو http://localhost): لا " +
      "تستطيع المحفظة إنشاء مفاتيح.",
    originWarning: "افتح هذه الصفحة على العنوان {url}: الوثائق والطلبات تحمل هذا العنوان، " +
      "ولا تتصل الصفحة إلا بعنوانها.",
    noCitizens: "لا يوجد على هذا الخادم الملف seeds/citizens.json: لا مواطن افتراضي للاختيار.",
    apiKeyHow: "أنشئ مفتاحًا في طرفية الخادم (يظهر مرة واحدة فقط):",
    apiKeyCheckout: "أو من نسخة مستودع ثقة:",
    statusUnknown: "الحالة غير معروفة",
    // Every documented code (README), as the page shows it; the server's English text is the fallback.
    code_audience_mismatch: "أُعدّ إثبات ربط المفتاح لجهة أخرى.",
    code_bad_request: "الطلب غير سليم الصياغة.",
    code_client_exists: "يوجد عميل بهذا الاسم.",
    code_client_not_found: "لا يوجد عميل بهذا الاسم.",
    code_credential_not_found: "لا توجد وثيقة بهذا المعرّف.",
    code_credential_request_denied: "رفضت الجهة المُصدِرة إصدار الوثيقة.",
    code_expired: "انتهت صلاحية الوثيقة.",
    code_insufficient_scope: "ليس لمفتاح الواجهة البرمجية هذا النطاق اللازم.",
    code_internal_error: "تعطّلت ثقة على نحو غير متوقع؛ يحمل سجل الخادم معرّف الطلب.",
    code_invalid_claims: "المعطيات لا تطابق نوع الوثيقة.",
    code_invalid_credential_request: "طلب الوثيقة من المحفظة غير صالح.",
    code_invalid_disclosure: "أحد الإفصاحات غير سليم أو غير مُشار إليه أو مكرّر.",
    code_invalid_encryption_parameters: "الردود المشفّرة غير مدعومة.",
    code_invalid_grant: "رمز العرض أو الرمز السري خاطئ أو مستعمل أو منتهي الصلاحية.",
    code_invalid_holder_key: "مفتاح الحامل ليس مفتاحًا عامًا مقبولًا.",
    code_invalid_json: "المتن ليس JSON صارمًا.",
    code_invalid_key_binding: "إثبات ربط المفتاح غير صالح.",
    code_invalid_nonce: "رمز nonce الخاص بالمحفظة مجهول أو مستعمل: اطلب رمزًا جديدًا.",
    code_invalid_proof: "إثبات مفتاح المحفظة غير صالح.",
    code_invalid_request: "الطلب غير صالح.",
    code_invalid_signature: "توقيع الجهة المُصدِرة لا يصحّ.",
    code_invalid_status_reference: "مدخل حالة الوثيقة ليس مما تحفظه هذه الخدمة.",
    code_invalid_token: "رمز وصول المحفظة غير صالح أو منتهي الصلاحية.",
    code_invalid_vp_token: "رد المحفظة لا يتضمن تقديمًا واحدًا بالضبط.",
    code_key_binding_required: "إثبات ربط المفتاح مطلوب.",
    code_key_revoked: "ألغت الجهة المُصدِرة المفتاح الذي وقّع هذه الوثيقة.",
    code_malformed: "هذه ليست وثيقة SD-JWT سليمة الصياغة.",
    code_malformed_response: "رد المحفظة غير سليم الصياغة.",
    code_method_not_allowed: "هذا المسار لا يقبل هذه الطريقة.",
    code_missing_claims: "لم يُفصَح عن معطى مطلوب.",
    code_nonce_mismatch: "أُعدّ إثبات ربط المفتاح لرمز nonce آخر.",
    code_nonce_replayed: "سبق الرد على هذا الطلب.",
    code_not_acceptable: "لا رد بصيغة يقبلها الطلب.",
    code_not_found: "لا شيء في هذا المسار.",
    code_not_yet_valid: "الوثيقة ليست سارية بعد.",
    code_offer_not_found: "لا يوجد هذا العرض، أو انتهت صلاحيته.",
    code_presentation_rejected: "فحصت جهة التحقق التقديم ورفضته.",
    code_presentation_request_not_found: "لا يوجد طلب التقديم هذا.",
    code_rate_limited: "طلبات كثيرة جدًا لهذا المفتاح: انتظر قليلًا.",
    code_request_answered: "تمّ الرد على طلب التقديم هذا.",
    code_request_expired: "انتهت صلاحية هذا الطلب.",
    code_request_too_large: "متن الطلب كبير جدًا.",
    code_revoked: "أُلغيت الوثيقة.",
    code_state_mismatch: "حالة الرد لا تخص هذا الطلب.",
    code_status_conflict: "لا يمكن نقل الوثيقة إلى هذه الحالة.",
    code_status_list_not_found: "لا توجد قائمة الحالات هذه.",
    code_status_unavailable: "تعذّرت قراءة حالة الوثيقة.",
    code_store_unavailable: "مخزن ثقة لا يستجيب الآن.",
    code_suspended: "الوثيقة معلّقة.",
    code_temporarily_unavailable: "جهة التحقق لا تستجيب الآن.",
    code_too_large: "التقديم كبير جدًا.",
    code_unauthenticated: "يلزم مفتاح واجهة برمجية صالح.",
    code_unknown_credential_configuration: "لا تقدّم الجهة المُصدِرة هذه الوثيقة.",
    code_unknown_issuer: "الجهة المُصدِرة غير موثوقة.",
    code_unknown_key: "ليس للجهة المُصدِرة مفتاح بهذا المعرّف.",
    code_unsupported_algorithm: "خوارزمية التوقيع غير مقبولة.",
    code_unsupported_grant_type: "نقطة الرموز لا تقبل هذا النوع من المنح.",
    code_unsupported_media_type: "يجب أن يكون المتن بصيغة JSON.",
    code_unsupported_vct: "لا يُصدَر هذا النوع من الوثائق هنا.",
    code_untrusted_type: "الجهة المُصدِرة غير موثوقة لهذا النوع من الوثائق.",
    code_vct_mismatch: "الوثيقة ليست من النوع المطلوب.",
    code_wallet_error: "رفضت المحفظة أو تعطّلت.",
    code_wrong_type: "نوع JWT ليس dc+sd-jwt.",
    code_certificate_expired: "انتهت صلاحية إحدى شهادات سلسلة الجهة المُصدِرة.",
    code_certificate_mismatch: "شهادة الجهة المُصدِرة تسمّي جهة أخرى.",
    code_certificate_not_yet_valid: "إحدى شهادات سلسلة الجهة المُصدِرة ليست سارية بعد.",
    code_invalid_certificate_chain: "سلسلة شهادات الجهة المُصدِرة غير صالحة.",
    code_untrusted_certificate: "لا تنتهي سلسلة شهادات الجهة المُصدِرة إلى جذر موثوق.",
    code_cbor_duplicate_key: "يكرّر ترميز CBOR في الوثيقة (mdoc) مفتاحًا في جدول.",
    code_cbor_indefinite_length: "يستعمل ترميز CBOR في الوثيقة (mdoc) طولًا غير محدّد حيث يلزم طول محدّد.",
    code_cbor_length_too_large: "يعلن ترميز CBOR في الوثيقة (mdoc) طولًا أو عددًا يتجاوز الحدّ.",
    code_cbor_malformed: "ترميز CBOR في الوثيقة (mdoc) غير سليم.",
    code_cbor_too_deep: "ترميز CBOR في الوثيقة (mdoc) متداخل بعمق زائد.",
    code_cbor_trailing_bytes: "في ترميز CBOR للوثيقة (mdoc) بايتات بعد نهايته.",
    code_cbor_truncated: "ينتهي ترميز CBOR في الوثيقة (mdoc) قبل أوانه.",
    code_cbor_wrong_tag: "يحمل ترميز CBOR في الوثيقة (mdoc) وسمًا غير مسموح به في ذلك الموضع.",
    code_cbor_wrong_type: "في ترميز CBOR للوثيقة (mdoc) عنصر من نوع خاطئ.",
    code_device_key_required: "تتطلّب وثيقة mdoc مفتاح جهاز المحفظة.",
    code_digest_mismatch: "عنصر مُعاد لا يطابق بصمته في الـ MSO الموقَّع.",
    code_doctype_mismatch: "وثيقة mdoc ليست من نوع الوثيقة المطلوب.",
    code_element_not_in_mso: "عنصر مُعاد غير موجود في الـ MSO الموقَّع.",
    code_invalid_device_signature: "توقيع جهاز المحفظة على هذا الطلب غير صالح.",
    code_mdoc_malformed: "تقديم وثيقة mdoc غير سليم.",
    code_unsupported_format: "صيغة الوثيقة هذه غير مدعومة.",
    code_access_certificate_missing: "يتطلب الطلب الموقَّع شهادة وصول، وليس لهذا الخادم شهادة.",
    code_change_not_replicated: "لم يصل التغيير إلى عدد كافٍ من نسخ Redis في الوقت المحدد: أعد المحاولة.",
    code_decryption_failed: "تعذّر فك تشفير رد المحفظة المشفّر لهذا الطلب.",
    code_encryption_required: "لا يقبل هذا الطلب إلا ردودًا مشفّرة.",
    code_keyring_unavailable: "تعذّر تحميل مفاتيح الجهة المُصدِرة الآن.",
    code_origin_mismatch: "جاء الرد من مصدر لا يتوقعه هذا الطلب.",
    code_response_code_mismatch: "رمز الرد لا يطابق هذا الطلب.",
    code_response_too_large: "رد المحفظة كبير جدًا.",
    code_too_many_streams: "انتظارات مفتوحة كثيرة جدًا لهذا المفتاح: أغلق واحدًا أو انتظر.",
    code_unsupported_encryption: "تشفير الرد ليس مما يقبله هذا الطلب.",
  },
};

// ---------------------------------------------------------------------------------------
// Small helpers

const $ = (id) => document.getElementById(id);
const ROOT = new URL("../", location.href); // the API, wherever a proxy mounts Thiqa
const utf8 = new TextEncoder();

let lang = "en";

/** What a documented code means, in the page's language; else the server's own words. */
function codeText(code, serverText = "") {
  const key = `code_${code}`;
  return STRINGS[lang][key] ? t(`code_${code}`) : serverText || code;
}

function t(key, vars = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** A message that re-renders in the new language when the language changes. */
function say(where, key, vars = {}, error = false) {
  const node = $(where);
  node.thiqaMessage = key ? { key, vars, error } : null;
  renderMessage(node);
}

function renderMessage(node) {
  const message = node.thiqaMessage;
  node.textContent = message ? t(message.key, message.vars) : "";
  node.classList.toggle("error", Boolean(message?.error));
}

class UserError extends Error {
  constructor(key, vars = {}) {
    super(key);
    this.key = key;
    this.vars = vars;
  }
}

class ApiError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body ?? {};
  }

  get detail() {
    const b = this.body;
    const code = b.code || b.error || `HTTP ${this.status}`;
    const text = b.detail || b.error_description || b.title || "";
    // The page's language for the codes it knows (every documented one); the server's
    // English detail only for the rest.
    const shown = codeText(code, text);
    return shown && shown !== code ? `${shown} (${code})` : code;
  }
}

function report(where, err) {
  if (err instanceof UserError) say(where, err.key, err.vars, true);
  else if (err instanceof ApiError) say(where, "refused", { detail: err.detail }, true);
  else if (err instanceof TypeError) say(where, "networkError", {}, true);
  else if (err?.name !== "AbortError") say(where, "refused", { detail: String(err) }, true);
}

/** Run an action from a button: busy while it runs, errors shown where the button is. */
async function act(button, where, action) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    await action();
  } catch (err) {
    report(where, err);
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    syncStatusButtons();
  }
}

function b64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function unb64url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

const b64urlJson = (value) => b64url(utf8.encode(JSON.stringify(value)));
const unb64urlJson = (text) => JSON.parse(new TextDecoder().decode(unb64url(text)));

async function sha256(text) {
  return b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", utf8.encode(text))));
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
const samePath = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const isPrefix = (prefix, path) =>
  prefix.length <= path.length && prefix.every((x, i) => x === path[i]);
const pathKey = (path) => path.join(".");

function sameOrigin(url) {
  return new URL(url, location.href).origin === location.origin;
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 200) };
  }
}

// ---------------------------------------------------------------------------------------
// The API, for the two consoles

function apiKey() {
  const key = $("api-key").value.trim();
  if (!key) throw new UserError("needApiKey");
  return key;
}

async function api(path, { method = "GET", body, signal } = {}) {
  const headers = { Authorization: `Bearer ${apiKey()}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(new URL(path, ROOT), {
    method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store", credentials: "omit",
  });
  const answer = await readBody(response);
  if (!response.ok) throw new ApiError(response.status, answer);
  return answer;
}

/** A wallet-side request: no API key, only to this origin. */
async function wfetch(url, init = {}) {
  if (!sameOrigin(url)) throw new UserError("originWarning", { url: `${new URL(url).origin}/demo/` });
  const response = await fetch(url, { cache: "no-store", credentials: "omit", ...init });
  return response;
}

async function wjson(url, init = {}) {
  const response = await wfetch(url, init);
  const body = await readBody(response);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

const svgImage = (svg) => `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;

// ---------------------------------------------------------------------------------------
// Page data: where the server lives, the synthetic citizens, the type metadata

const page = { config: null, citizens: [], typeMetadata: null };

function labelFor(path) {
  const claim = page.typeMetadata?.claims?.find((c) => samePath(c.path, path));
  const display = claim?.display ?? [];
  const shown = display.find((d) => d.locale === lang) ?? display.find((d) => d.locale === "en");
  return shown?.label ?? pathKey(path);
}

function typeName() {
  const display = page.typeMetadata?.display ?? [];
  return (display.find((d) => d.locale === lang) ?? display[0])?.name ?? "";
}

function fullNames(claims) {
  const latin = [claims.given_name, claims.family_name].filter(Boolean).join(" ");
  const arabic = [claims["given_name#ar"], claims["family_name#ar"]].filter(Boolean).join(" ");
  return [latin, arabic].filter(Boolean);
}

function formatDate(seconds) {
  const locale = { ar: "ar-MA", fr: "fr-MA", en: "en-GB" }[lang];
  return new Intl.DateTimeFormat(locale, { dateStyle: "long" }).format(new Date(seconds * 1000));
}

// ---------------------------------------------------------------------------------------
// Issuer console

const issuer = { offerId: null, credentialId: null, status: null, watch: 0 };

function renderCitizens() {
  const select = $("citizen");
  const chosen = select.value;
  select.replaceChildren(...page.citizens.map((c, i) => {
    // First-strong isolates keep each script's own direction inside one option.
    const text = fullNames(c).map((n) => `\u2068${n}\u2069`).join(" — ");
    return el("option", { value: String(i) }, `${text} (${c.national_id})`);
  }));
  if (chosen) select.value = chosen;
}

async function createOffer() {
  const citizen = page.citizens[Number($("citizen").value)];
  if (!citizen) throw new UserError("noCitizens");
  const withPin = $("with-pin").checked;
  const offer = await api("v1/credential-offers", {
    method: "POST", body: { claims: citizen, tx_code: withPin },
  });
  issuer.offerId = offer.offer_id;
  issuer.credentialId = null;
  issuer.status = null;
  renderCredentialStatus();
  $("offer-qr").src = svgImage(offer.qr_svg);
  $("offer-uri").value = offer.offer_uri;
  $("offer-pin").value = offer.tx_code ?? "";
  $("offer-pin-box").hidden = !offer.tx_code;
  $("offer").hidden = false;
  $("issued").hidden = true;
  say("issuer-message", "offerCreated");
  followOffer(offer.offer_id);
}

/** Poll the offer until the wallet has the credential, to learn the credential's id. */
async function followOffer(offerId) {
  const watch = ++issuer.watch;
  while (watch === issuer.watch) {
    let info;
    try {
      info = await api(`v1/credential-offers/${encodeURIComponent(offerId)}`);
    } catch (err) {
      if (watch !== issuer.watch) return;
      if (err instanceof ApiError && err.status === 404) say("issuer-message", "offerGone", {}, true);
      else report("issuer-message", err);
      return;
    }
    if (watch !== issuer.watch) return;
    if (info.status === "issued" && info.credential_id) {
      issuer.credentialId = info.credential_id;
      $("credential-id").textContent = info.credential_id;
      $("issued").hidden = false;
      say("issuer-message", "offerIssued");
      await refreshStatus();
      return;
    }
    if (info.status === "failed") {
      say("issuer-message", "offerFailed", {}, true);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 700));
  }
}

/** Offer only the status changes that can succeed: revoking is final. */
function syncStatusButtons() {
  const status = issuer.status;
  $("suspend").disabled = status !== "valid";
  $("reinstate").disabled = status !== "suspended";
  $("revoke").disabled = status === "revoked" || !status;
}

function renderCredentialStatus() {
  syncStatusButtons();
  const out = $("credential-status");
  out.dataset.status = issuer.status ?? "";
  out.className = issuer.status ? `status-${issuer.status}` : "";
  out.textContent = issuer.status ? t(`status_${issuer.status}`) : "";
}

async function refreshStatus() {
  const info = await api(`v1/credentials/${encodeURIComponent(issuer.credentialId)}`);
  issuer.status = info.status;
  renderCredentialStatus();
}

async function changeStatus(action) {
  const info = await api(
    `v1/credentials/${encodeURIComponent(issuer.credentialId)}/${action}`, { method: "POST" },
  );
  issuer.status = info.status;
  renderCredentialStatus();
  say("issuer-message", "statusNow", { status: t(`status_${info.status}`) });
  await renderWallet(); // the wallet's cards read the status list again
}

// ---------------------------------------------------------------------------------------
// The wallet's store: IndexedDB, because it can hold a non-extractable CryptoKey

const DB_NAME = "thiqa-demo-wallet";

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore("credentials", {
      keyPath: "id",
    });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function dbDo(mode, work) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction("credentials", mode);
      const request = work(tx.objectStore("credentials"));
      tx.oncomplete = () => resolve(request?.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

const storedCredentials = () => dbDo("readonly", (s) => s.getAll());

/**
 * Read an SD-JWT (issuance or presentation form, without a KB-JWT): the issuer's payload,
 * the claims with every disclosure applied, and each disclosure with the path it discloses.
 * A real wallet would also check the issuer's signature; this one trusts the server that
 * served it, which is the issuer.
 */
async function parseSdJwt(sdJwt) {
  const [jwt, ...rest] = sdJwt.split("~");
  const payload = unb64urlJson(jwt.split(".")[1]);
  const byDigest = new Map();
  for (const raw of rest.filter(Boolean)) {
    byDigest.set(await sha256(raw), { raw, value: unb64urlJson(raw) });
  }
  const entries = [];
  const walk = (value, path) => {
    if (Array.isArray(value)) {
      return value.flatMap((item, i) => {
        if (item && typeof item === "object" && Object.keys(item).length === 1 && "..." in item) {
          const found = byDigest.get(item["..."]);
          if (!found) return [];
          entries.push({ raw: found.raw, path: [...path, i] });
          return [walk(found.value[1], [...path, i])];
        }
        return [walk(item, [...path, i])];
      });
    }
    if (!value || typeof value !== "object") return value;
    const out = {};
    for (const [name, member] of Object.entries(value)) {
      if (name !== "_sd" && name !== "_sd_alg") out[name] = walk(member, [...path, name]);
    }
    for (const digest of value._sd ?? []) {
      const found = byDigest.get(digest);
      if (!found) continue;
      const [, name, member] = found.value;
      entries.push({ raw: found.raw, path: [...path, name] });
      out[name] = walk(member, [...path, name]);
    }
    return out;
  };
  const claims = walk(payload, []);
  return { jwt, payload, claims, entries };
}

/**
 * The credential's personal claims as rows in the order of the type's metadata: an object
 * claim (Place of birth) is a heading row with its members below it, nested; claims the
 * metadata does not name come last, in the credential's order.
 */
function orderedRows(claims) {
  const leaves = personalLeaves(claims);
  const order = (page.typeMetadata?.claims ?? []).map((c) => c.path);
  const rank = (path) => {
    const i = order.findIndex((p) => samePath(p, path));
    return i < 0 ? order.length : i;
  };
  const sorted = leaves
    .map((leaf, i) => ({ leaf, i }))
    .sort((a, b) => rank(a.leaf[0]) - rank(b.leaf[0]) || a.i - b.i)
    .map(({ leaf }) => leaf);
  const rows = [];
  const headed = new Set();
  for (const [path, value] of sorted) {
    const parent = path.slice(0, -1);
    if (parent.length && !headed.has(pathKey(parent))) {
      headed.add(pathKey(parent));
      rows.push({ path: parent, group: true });
    }
    rows.push({ path, value, group: false });
  }
  return rows;
}

/** The personal claims of a credential as [path, value] leaves, envelope claims left out. */
function personalLeaves(claims, path = []) {
  const envelope = new Set(["iss", "iat", "nbf", "exp", "vct", "vct#integrity", "cnf",
    "status", "sub"]);
  const out = [];
  for (const [name, value] of Object.entries(claims)) {
    if (path.length === 0 && envelope.has(name)) continue;
    if (value && typeof value === "object" && !Array.isArray(value)) {
      out.push(...personalLeaves(value, [...path, name]));
    } else {
      out.push([[...path, name], value]);
    }
  }
  return out;
}

const parsedCache = new Map();

async function walletCredentials() {
  const records = await storedCredentials();
  for (const record of records) {
    if (!parsedCache.has(record.id)) parsedCache.set(record.id, await parseSdJwt(record.credential));
  }
  records.sort((a, b) => b.receivedAt - a.receivedAt);
  return records.map((record) => ({ record, parsed: parsedCache.get(record.id) }));
}

async function renderWallet() {
  const list = $("wallet-credentials");
  const items = await walletCredentials();
  if (!items.length) {
    list.replaceChildren(el("li", { class: "empty" }, t("noCredentials")));
    return;
  }
  list.replaceChildren(...items.map(({ record, parsed }) => {
    // Each name isolated in its own direction, joined by a separator outside both.
    const names = fullNames(parsed.claims).flatMap((n, i) => [i ? " · " : null, el("bdi", {}, n)]);
    const status = el("div", { class: "wallet-status", dataset: { status: "" } });
    showWalletStatus(status, record.id, parsed.payload);
    return el("li", { dataset: { credential: record.id } },
      el("div", { class: "meta" }, typeName()),
      status,
      el("div", { class: "names" }, ...names),
      el("div", {}, `${labelFor(["national_id"])}: `, el("bdi", {}, parsed.claims.national_id ?? "")),
      parsed.payload.exp
        ? el("div", { class: "meta" }, t("validUntil", { date: formatDate(parsed.payload.exp) }))
        : null);
  }));
}

// The wallet reads its credential's status as any relying party would: the issuer's Token
// Status List at the credential's status URI, its signature checked with the issuer's
// published keys (ES256), the 2-bit entry at the credential's index.
const STATUS_NAMES = { 0: "valid", 1: "revoked", 2: "suspended" };

async function credentialStatus(payload) {
  const ref = payload.status?.status_list;
  if (!ref || !Number.isInteger(ref.idx) || !sameOrigin(ref.uri)) throw new Error("status");
  const response = await wfetch(ref.uri, { headers: { Accept: "application/statuslist+jwt" } });
  if (!response.ok) throw new Error("status");
  const token = await response.text();
  const [h, p, sig] = token.trim().split(".");
  const header = unb64urlJson(h);
  const claims = unb64urlJson(p);
  if (header.typ !== "statuslist+jwt" || header.alg !== "ES256" || claims.sub !== ref.uri) {
    throw new Error("status");
  }
  const issuer = await wjson(wellKnown(payload.iss, "jwt-vc-issuer"));
  const jwk = (issuer.jwks?.keys ?? []).find((k) => k.kid === header.kid);
  if (!jwk) throw new Error("status");
  const key = await crypto.subtle.importKey(
    "jwk", { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, { name: "ECDSA", namedCurve: "P-256" },
    false, ["verify"]);
  const ok = await crypto.subtle.verify(
    { name: "ECDSA", hash: "SHA-256" }, key, unb64url(sig), utf8.encode(`${h}.${p}`));
  if (!ok || claims.status_list?.bits !== 2) throw new Error("status");
  const packed = new Blob([unb64url(claims.status_list.lst)]).stream()
    .pipeThrough(new DecompressionStream("deflate"));
  const bytes = new Uint8Array(await new Response(packed).arrayBuffer());
  const bit = ref.idx * 2;
  if ((bit >> 3) >= bytes.length) throw new Error("status");
  return STATUS_NAMES[(bytes[bit >> 3] >> (bit & 7)) & 3] ?? "unknown";
}

async function showWalletStatus(node, id, payload) {
  let status = "unknown";
  try {
    status = await credentialStatus(payload);
  } catch {
    // Unreadable, unsigned or not this issuer's: the wallet says it does not know.
  }
  node.dataset.status = status;
  node.className = `wallet-status status-${status}`;
  node.textContent = status === "unknown" ? t("statusUnknown") : t(`status_${status}`);
}

// ---------------------------------------------------------------------------------------
// Wallet: OpenID4VCI, pre-authorized code flow

async function signJwt(header, payload, privateKey) {
  const input = `${b64urlJson(header)}.${b64urlJson(payload)}`;
  // WebCrypto's ECDSA signature is already r || s (IEEE P1363), which is what JWS wants.
  const signature = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" }, privateKey, utf8.encode(input),
  );
  return `${input}.${b64url(new Uint8Array(signature))}`;
}

function wellKnown(identifier, name) {
  const url = new URL(identifier);
  return new URL(`/.well-known/${name}${url.pathname.replace(/\/$/, "")}`, url.origin).href;
}

async function readOffer(link) {
  const query = link.trim().replace(/^openid-credential-offer:\/\/[^?]*\?/, "");
  if (query === link.trim()) throw new UserError("badOffer");
  const params = new URLSearchParams(query);
  if (params.has("credential_offer")) return JSON.parse(params.get("credential_offer"));
  const reference = params.get("credential_offer_uri");
  if (!reference) throw new UserError("badOffer");
  return wjson(reference);
}

async function acceptOffer() {
  if (!crypto.subtle) throw new UserError("noCrypto");
  const offer = await readOffer($("wallet-offer").value);
  const grant = offer.grants?.[PRE_AUTH];
  if (!grant) throw new UserError("badOffer");
  const issuerId = offer.credential_issuer;
  const metadata = await wjson(wellKnown(issuerId, "openid-credential-issuer"));
  const server = metadata.authorization_servers?.[0] ?? issuerId;
  const oauth = await wjson(wellKnown(server, "oauth-authorization-server"));

  const form = new URLSearchParams({
    grant_type: PRE_AUTH, "pre-authorized_code": grant["pre-authorized_code"],
  });
  if (grant.tx_code) {
    const pin = $("wallet-pin").value.trim();
    if (!pin) throw new UserError("needPin");
    form.set("tx_code", pin);
  }
  const token = await wjson(oauth.token_endpoint, {
    method: "POST", body: form,
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
  const { c_nonce: nonce } = await wjson(metadata.nonce_endpoint, { method: "POST" });

  // One key per credential, so two presentations of two credentials cannot be linked by key.
  // The private half is not extractable; the public half always is.
  const keys = await crypto.subtle.generateKey(
    { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"],
  );
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", keys.publicKey);
  const proof = await signJwt(
    { alg: "ES256", typ: "openid4vci-proof+jwt", jwk: { kty, crv, x, y } },
    { aud: issuerId, iat: nowSeconds(), nonce },
    keys.privateKey,
  );
  const configurationId = offer.credential_configuration_ids[0];
  const answer = await wjson(metadata.credential_endpoint, {
    method: "POST",
    headers: {
      Authorization: `${token.token_type || "Bearer"} ${token.access_token}`,
      "Content-Type": "application/json",
    },
    body: JSON.stringify({
      credential_configuration_id: configurationId, proofs: { jwt: [proof] },
    }),
  });
  const credential = answer.credentials?.[0]?.credential;
  if (typeof credential !== "string") throw new UserError("badOffer");
  const parsed = await parseSdJwt(credential);
  const record = {
    id: crypto.randomUUID(),
    credential,
    privateKey: keys.privateKey,
    issuer: issuerId,
    vct: parsed.payload.vct,
    receivedAt: Date.now(),
  };
  await dbDo("readwrite", (s) => s.put(record));
  parsedCache.set(record.id, parsed);
  $("wallet-offer").value = "";
  $("wallet-pin").value = "";
  await renderWallet();
  say("wallet-message", "received");
}

// ---------------------------------------------------------------------------------------
// Wallet: OpenID4VP, answering a request by direct_post (encrypted: direct_post.jwt)

const presenting = { request: null, item: null, requested: [] };

function base64Bytes(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/**
 * The Request Object's claims. A signed one (x509_hash, x509_san_dns: HAIP 1.0) is taken only
 * from the relying party this page's server vouches for: its access certificate, issued
 * under the server's own root, pinned by hash in config.json (a browser cannot build X.509
 * paths itself); the signature must be that certificate's key's. An unsigned one only under
 * the redirect_uri prefix, checked by the caller.
 */
async function decodeRequestObject(text) {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) return { request: JSON.parse(trimmed), signed: false };
  const parts = trimmed.split(".");
  if (parts.length !== 3) throw new UserError("badRequest");
  const header = unb64urlJson(parts[0]);
  if (header.typ !== "oauth-authz-req+jwt") throw new UserError("badRequest");
  if (header.alg === "none") return { request: unb64urlJson(parts[1]), signed: false };
  const access = page.config?.access;
  if (header.alg !== "ES256" || !access || !Array.isArray(header.x5c)) {
    throw new UserError("badRequest");
  }
  const leafHash = b64url(new Uint8Array(
    await crypto.subtle.digest("SHA-256", base64Bytes(header.x5c[0])),
  ));
  if (leafHash !== access.x509_hash) throw new UserError("badRequest");
  const key = await crypto.subtle.importKey(
    "jwk", access.jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"],
  );
  const valid = await crypto.subtle.verify(
    { name: "ECDSA", hash: "SHA-256" }, key, unb64url(parts[2]),
    utf8.encode(`${parts[0]}.${parts[1]}`),
  );
  if (!valid) throw new UserError("badRequest");
  const request = unb64urlJson(parts[1]);
  const [prefix, value] = [request.client_id?.split(":", 1)[0], request.client_id?.slice(
    (request.client_id?.indexOf(":") ?? 0) + 1,
  )];
  const hostOk = prefix === "x509_san_dns" && new URL(request.response_uri).hostname === value;
  if (!(prefix === "x509_hash" && value === leafHash) && !hostOk) {
    throw new UserError("badRequest");
  }
  return { request, signed: true };
}

/** Concat KDF (RFC 7518 §4.6.2) for ECDH-ES in direct key agreement mode: one SHA-256 round. */
async function concatKdf(sharedSecret, enc, bits) {
  const lengthPrefixed = (bytes) => {
    const out = new Uint8Array(4 + bytes.length);
    new DataView(out.buffer).setUint32(0, bytes.length);
    out.set(bytes, 4);
    return out;
  };
  const parts = [
    new Uint8Array([0, 0, 0, 1]), new Uint8Array(sharedSecret), lengthPrefixed(utf8.encode(enc)),
    lengthPrefixed(new Uint8Array()), lengthPrefixed(new Uint8Array()),
    (() => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, bits); return b; })(),
  ];
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) { joined.set(part, offset); offset += part.length; }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
  return digest.slice(0, bits / 8);
}

/** The Authorization Response as a compact JWE (ECDH-ES, A128GCM) to the request's key. */
async function encryptResponse(parameters, verifierJwk) {
  const enc = "A128GCM";
  const ephemeral = await crypto.subtle.generateKey(
    { name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"],
  );
  const theirs = await crypto.subtle.importKey(
    "jwk", { kty: "EC", crv: "P-256", x: verifierJwk.x, y: verifierJwk.y },
    { name: "ECDH", namedCurve: "P-256" }, false, [],
  );
  const shared = await crypto.subtle.deriveBits(
    { name: "ECDH", public: theirs }, ephemeral.privateKey, 256,
  );
  const cek = await crypto.subtle.importKey(
    "raw", await concatKdf(shared, enc, 128), "AES-GCM", false, ["encrypt"],
  );
  const epk = await crypto.subtle.exportKey("jwk", ephemeral.publicKey);
  const header = {
    alg: "ECDH-ES", enc, kid: verifierJwk.kid,
    epk: { kty: "EC", crv: "P-256", x: epk.x, y: epk.y },
  };
  const protectedHeader = b64urlJson(header);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: utf8.encode(protectedHeader), tagLength: 128 },
    cek, utf8.encode(JSON.stringify(parameters)),
  ));
  const ciphertext = sealed.slice(0, -16);
  const tag = sealed.slice(-16);
  return `${protectedHeader}..${b64url(iv)}.${b64url(ciphertext)}.${b64url(tag)}`;
}

async function openRequest() {
  const link = $("wallet-request").value.trim();
  const query = link.replace(/^openid4vp:\/\/[^?]*\?/, "");
  if (query === link) throw new UserError("badRequest");
  const params = new URLSearchParams(query);
  let request;
  let signed = false;
  if (params.get("request_uri")) {
    const response = await wfetch(params.get("request_uri"));
    if (!response.ok) throw new ApiError(response.status, await readBody(response));
    ({ request, signed } = await decodeRequestObject(await response.text()));
  } else if (params.get("request")) {
    ({ request, signed } = await decodeRequestObject(params.get("request")));
  } else {
    request = Object.fromEntries(params);
    for (const name of ["dcql_query", "client_metadata"]) {
      if (typeof request[name] === "string") request[name] = JSON.parse(request[name]);
    }
  }
  const clientId = request.client_id;
  if (params.get("client_id") && params.get("client_id") !== clientId) {
    throw new UserError("badRequest");
  }
  const unsignedOk = !signed && clientId?.startsWith("redirect_uri:") &&
    clientId === `redirect_uri:${request.response_uri}`;
  if (!(signed || unsignedOk) ||
      !["direct_post", "direct_post.jwt"].includes(request.response_mode) ||
      !sameOrigin(request.response_uri)) {
    throw new UserError("badRequest");
  }
  if (request.response_mode === "direct_post.jwt") {
    const key = request.client_metadata?.jwks?.keys?.find(
      (k) => k.kty === "EC" && k.crv === "P-256" && (k.alg ?? "ECDH-ES") === "ECDH-ES",
    );
    const encs = request.client_metadata?.encrypted_response_enc_values_supported ?? ["A128GCM"];
    if (!key || !encs.includes("A128GCM")) throw new UserError("badRequest");
  }
  const query0 = request.dcql_query?.credentials?.[0];
  if (!query0 || query0.format !== "dc+sd-jwt") throw new UserError("badRequest");
  const types = query0.meta?.vct_values ?? [];
  const items = await walletCredentials();
  const item = items.find(({ parsed }) => !types.length || types.includes(parsed.payload.vct));
  if (!item) throw new UserError("noMatching");
  presenting.request = request;
  presenting.item = item;
  presenting.requested = (query0.claims ?? []).map((c) => c.path);
  presenting.chosen = null;
  renderConsent();
  $("wallet-consent").hidden = false;
  say("wallet-message", null);
  $("consent-claims").querySelector("input")?.focus();
}

function renderConsent() {
  const { request, item, requested } = presenting;
  if (!request) return;
  const chosen = presenting.chosen ?? new Set(
    personalLeaves(item.parsed.claims)
      .map(([path]) => path)
      .filter((path) => requested.some((r) => isPrefix(r, path)))
      .map(pathKey),
  );
  const meta = request.client_metadata ?? {};
  $("consent-verifier").textContent = meta.client_name || request.client_id;
  $("consent-purpose").textContent = meta.purpose ?? "";
  $("consent-claims").replaceChildren(...orderedRows(item.parsed.claims).map(({ path, value, group }, i) => {
    if (group) {
      return el("li", { class: "group", dataset: { group: pathKey(path) } }, labelFor(path));
    }
    const id = `consent-${i}`;
    const box = el("input", {
      type: "checkbox", id, checked: chosen.has(pathKey(path)), dataset: { path: pathKey(path) },
    });
    box.addEventListener("change", () => {
      presenting.chosen = new Set(
        [...$("consent-claims").querySelectorAll("input:checked")].map((b) => b.dataset.path),
      );
    });
    return el("li", { class: path.length > 1 ? "nested" : "" }, box,
      el("label", { for: id }, `${labelFor(path)}: `, el("bdi", {}, String(value))));
  }));
}

async function present(event) {
  event.preventDefault();
  const { request, item } = presenting;
  const chosen = [...$("consent-claims").querySelectorAll("input:checked")]
    .map((box) => box.dataset.path);
  const paths = personalLeaves(item.parsed.claims).map(([path]) => path)
    .filter((path) => chosen.includes(pathKey(path)));
  // A disclosure goes along if it discloses a chosen claim, one of its parents (without the
  // parent the verifier cannot reach the child's digest) or, for a chosen object, a member.
  const disclosures = item.parsed.entries
    .filter((entry) => paths.some((p) => isPrefix(entry.path, p) || isPrefix(p, entry.path)))
    .map((entry) => entry.raw);
  const presentation = `${item.parsed.jwt}~${disclosures.map((d) => `${d}~`).join("")}`;
  const kbJwt = await signJwt(
    { alg: "ES256", typ: "kb+jwt" },
    {
      iat: nowSeconds(), aud: request.client_id, nonce: request.nonce,
      sd_hash: await sha256(presentation),
    },
    item.record.privateKey,
  );
  const queryId = request.dcql_query.credentials[0].id;
  await answerVerifier({ vp_token: { [queryId]: [presentation + kbJwt] } });
}

async function answerVerifier(fields) {
  const { request } = presenting;
  let form;
  if (fields.vp_token && request.response_mode === "direct_post.jwt") {
    // Everything inside the JWE, vp_token as the JSON object it is (OpenID4VP 1.0 §8.3).
    const key = request.client_metadata.jwks.keys.find((k) => k.kty === "EC");
    const inner = { vp_token: fields.vp_token };
    if (request.state) inner.state = request.state;
    form = new URLSearchParams({ response: await encryptResponse(inner, key) });
  } else {
    const plain = { ...fields };
    if (plain.vp_token) plain.vp_token = JSON.stringify(plain.vp_token);
    form = new URLSearchParams(plain);
    if (request.state) form.set("state", request.state);
  }
  const response = await wfetch(request.response_uri, {
    method: "POST", body: form,
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
  const body = await readBody(response);
  presenting.request = null;
  $("wallet-consent").hidden = true;
  $("wallet-request").value = "";
  if (fields.error) {
    say("wallet-message", "declined");
  } else if (response.ok) {
    say("wallet-message", "presented");
  } else if (body.code === "presentation_rejected") {
    const codes = (body.errors ?? []).map((e) => e.code).join(", ");
    say("wallet-message", "presentedRefused", { codes }, true);
  } else {
    throw new ApiError(response.status, body);
  }
}

// ---------------------------------------------------------------------------------------
// Verifier console

const verifier = { requestId: null, view: null, abort: null };

function renderVerifierClaims() {
  const list = $("verifier-claims");
  const checked = new Set(
    list.children.length
      ? [...list.querySelectorAll("input:checked")].map((b) => b.dataset.path)
      : DEFAULT_ASK,
  );
  const claims = page.typeMetadata?.claims ?? [];
  list.replaceChildren(...claims.map((claim, i) => {
    const id = `ask-${i}`;
    const key = pathKey(claim.path);
    return el("li", { class: claim.path.length > 1 ? "nested" : "" },
      el("input", {
        type: "checkbox", id, checked: checked.has(key),
        dataset: { path: key, pathJson: JSON.stringify(claim.path) },
      }),
      el("label", { for: id }, labelFor(claim.path)));
  }));
}

/** The W3C Digital Credentials API, where the browser offers it (feature-detected). */
const digitalCredentialsApi = () =>
  typeof window.DigitalCredential === "function" && window.isSecureContext &&
  typeof navigator.credentials?.get === "function";

async function createRequest(useDcApi = false) {
  const boxes = [...$("verifier-claims").querySelectorAll("input:checked")];
  if (!boxes.length) throw new UserError("needClaims");
  const purpose = $("purpose").value.trim() || t("purposeDefault");
  const body = {
    vct: page.config.vct,
    claims: boxes.map((b) => JSON.parse(b.dataset.pathJson)),
    purpose,
  };
  // Only on the tester's click: a browser that offers the API waits for a wallet the user
  // picks, and with none installed it would wait for ever.
  const dcApi = useDcApi && digitalCredentialsApi();
  if (dcApi) {
    // HAIP 1.0 §5.2: a signed dc_api.jwt request for this page's origin; else the QR flow.
    Object.assign(body, { response_mode: "dc_api.jwt", expected_origins: [location.origin] });
  }
  const created = await api("v1/presentation-requests", { method: "POST", body });
  verifier.abort?.abort();
  verifier.requestId = created.request_id;
  verifier.view = { request_id: created.request_id, state: "pending", verdict: null };
  renderVerdict();
  if (dcApi) {
    $("request").hidden = true;
    say("verifier-message", "requestInBrowser");
    const credential = await navigator.credentials.get({
      digital: { requests: [created.dc_api_request] },
    });
    // The page hands the wallet's (encrypted) answer to Thiqa with the origin it runs at.
    await api(`v1/presentation-requests/${encodeURIComponent(created.request_id)}/dc-api-response`, {
      method: "POST", body: { origin: location.origin, data: credential.data },
    });
  } else {
    $("request-qr").src = svgImage(created.qr_svg);
    $("request-uri").value = created.wallet_uri;
    $("request").hidden = false;
    say("verifier-message", "requestCreated");
  }
  watchRequest(created.request_id);
}

/** Long-poll until the request is final: answers the moment the verdict is in. */
async function watchRequest(requestId) {
  const abort = new AbortController();
  verifier.abort = abort;
  try {
    for (;;) {
      const view = await api(
        `v1/presentation-requests/${encodeURIComponent(requestId)}?wait=${WAIT_SECONDS}`,
        { signal: abort.signal },
      );
      if (abort.signal.aborted) return;
      verifier.view = view;
      renderVerdict();
      if (view.state !== "pending") {
        say("verifier-message", null);
        return;
      }
    }
  } catch (err) {
    if (!abort.signal.aborted) report("verifier-message", err);
  }
}

function renderVerdict() {
  const box = $("verdict");
  const view = verifier.view;
  if (!view) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  box.dataset.state = view.state;
  const verdict = view.verdict;
  const summary = $("verdict-summary");
  const status = $("verdict-status");
  const table = $("verdict-table");
  if (!verdict) {
    box.dataset.valid = "";
    box.dataset.status = "";
    summary.textContent = view.state === "expired" ? t("expired") : t("waiting");
    status.textContent = "—";
    $("verdict-errors").replaceChildren();
    table.hidden = true;
    return;
  }
  box.dataset.valid = String(verdict.valid);
  box.dataset.status = verdict.credential_status ?? "";
  summary.textContent = verdict.valid ? `✔ ${t("valid")}` : `✘ ${t("invalid")}`;
  status.textContent = verdict.credential_status ? t(`status_${verdict.credential_status}`) : "—";
  status.className = verdict.credential_status ? `status-${verdict.credential_status}` : "";
  $("verdict-errors").replaceChildren(...(verdict.errors ?? []).map((e) =>
    el("li", { dataset: { code: e.code } }, el("code", {}, e.code), ` — ${codeText(e.code, e.message)}`)));
  const leaves = verdict.claims
    ? orderedRows(verdict.claims).filter((row) => !row.group).map((row) => [row.path, row.value])
    : [];
  table.hidden = !leaves.length;
  $("verdict-claims").replaceChildren(...leaves.map(([path, value]) =>
    el("tr", { dataset: { path: pathKey(path) } },
      el("th", { scope: "row" }, labelFor(path)),
      el("td", {}, el("bdi", {}, typeof value === "string" ? value : JSON.stringify(value))))));
}

// ---------------------------------------------------------------------------------------
// Language

function applyLanguage(next) {
  lang = LANGS.includes(next) ? next : "en";
  sessionStorage.setItem(LANG_STORAGE, lang);
  const root = document.documentElement;
  root.lang = lang;
  root.dir = lang === "ar" ? "rtl" : "ltr";
  $("lang").value = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n);
  }
  for (const node of document.querySelectorAll("[data-i18n-alt]")) {
    node.alt = t(node.dataset.i18nAlt);
  }
  document.title = t("pageTitle");
  const purpose = $("purpose");
  const defaults = LANGS.map((l) => STRINGS[l].purposeDefault);
  if (!purpose.value || defaults.includes(purpose.value)) purpose.value = t("purposeDefault");
  for (const node of document.querySelectorAll(".message")) renderMessage(node);
  renderNotices();
  renderCitizens();
  renderVerifierClaims();
  renderCredentialStatus();
  renderConsent();
  renderVerdict();
  return renderWallet();
}

const notices = new Set();

function renderNotices() {
  $("notices").replaceChildren(...[...notices].map((key) =>
    el("p", {}, t(key, { url: new URL("demo/", `${page.config?.issuer ?? location.origin}/`) }))));
}

// ---------------------------------------------------------------------------------------
// Start

async function start() {
  const key = $("api-key");
  key.value = sessionStorage.getItem(KEY_STORAGE) ?? "";
  key.addEventListener("input", () => sessionStorage.setItem(KEY_STORAGE, key.value.trim()));

  const fromUrl = new URLSearchParams(location.search).get("lang");
  const browser = (navigator.language || "en").slice(0, 2);
  lang = [fromUrl, sessionStorage.getItem(LANG_STORAGE), browser].find((l) => LANGS.includes(l))
    ?? "en";

  const [config, seeds] = await Promise.all([
    fetch("config.json", { cache: "no-store" }).then((r) => r.json()),
    fetch("citizens.json", { cache: "no-store" }).then((r) => r.json()),
  ]);
  page.config = config;
  page.citizens = seeds.citizens ?? [];
  if (!page.citizens.length) notices.add("noCitizens");
  if (new URL(config.issuer).origin !== location.origin) notices.add("originWarning");
  if (!globalThis.crypto?.subtle) notices.add("noCrypto");
  try {
    // The labels a verifier shows are the ones the credential type publishes at its vct.
    page.typeMetadata = await (await fetch(sameOrigin(config.vct)
      ? config.vct : new URL(new URL(config.vct).pathname, ROOT))).json();
  } catch {
    page.typeMetadata = { claims: [] };
  }

  $("lang").addEventListener("change", (e) => applyLanguage(e.target.value));
  const click = (id, where, action) =>
    $(id).addEventListener("click", () => act($(id), where, action));
  click("create-offer", "issuer-message", createOffer);
  click("refresh-status", "issuer-message", refreshStatus);
  for (const action of ["revoke", "suspend", "reinstate"]) {
    click(action, "issuer-message", () => changeStatus(action));
  }
  $("send-to-wallet").addEventListener("click", () => {
    $("wallet-offer").value = $("offer-uri").value;
    $("wallet-pin").value = "";
    // The PIN travels apart from the offer: the tester types it, as a citizen would.
    ($("offer-pin-box").hidden ? $("wallet-accept") : $("wallet-pin")).focus();
  });
  click("wallet-accept", "wallet-message", acceptOffer);
  click("wallet-open-request", "wallet-message", openRequest);
  click("wallet-forget", "wallet-message", async () => {
    await dbDo("readwrite", (s) => s.clear());
    parsedCache.clear();
    await renderWallet();
    say("wallet-message", "walletEmptied");
  });
  $("wallet-consent").addEventListener("submit", (event) =>
    act($("wallet-present"), "wallet-message", () => present(event)));
  click("wallet-decline", "wallet-message", () => answerVerifier({ error: "access_denied" }));
  click("create-request", "verifier-message", () => createRequest(false));
  click("create-dc-request", "verifier-message", () => createRequest(true));
  $("create-dc-request").hidden = !digitalCredentialsApi();
  $("send-request-to-wallet").addEventListener("click", () => {
    $("wallet-request").value = $("request-uri").value;
    act($("wallet-open-request"), "wallet-message", openRequest);
  });

  await applyLanguage(lang);
  document.body.dataset.ready = "true";
}

start().catch((err) => report("issuer-message", err));
