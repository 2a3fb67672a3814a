// Every French sentence the page shows for what the box reports in English (docs/errors.md):
// the refusals of the API, worded from their stable `code` and Civia's `details` object
// (`reason` and the values the sentence needs); the `civia.warnings` of an answer; and the
// `error_details` of a knowledge document whose indexing failed. The box's English `message`
// is for developers and logs: nothing here ever shows it. No DOM, no imports: a plain table
// of texts and the few functions that fill in the values.

const MIB = 1024 * 1024;

/** Megabytes (MiB) as the box counts them: whole, rounded up (`up`) or down, or `decimals`. */
function megabytes(bytes, { up = false, decimals = 0 } = {}) {
  if (bytes === undefined || bytes === null || bytes === '') return '?';
  const n = Number(bytes) / MIB;
  if (!Number.isFinite(n)) return '?';
  if (decimals) return n.toFixed(decimals).replace('.', ',');
  return String(up ? Math.ceil(n) : Math.floor(n));
}

/** A value from the details, or a placeholder when the box left it out. */
const v = (x, fallback = '?') => (x === undefined || x === null || x === '' ? fallback : String(x));
/** « fichier PDF », or « fichier » when the box named no format. */
const file = (d) => (d.format ? `fichier ${d.format}` : 'fichier');

// Names of the fields the page sends, as the agent knows them (a `param`, a draft `field`).
const FIELD_LABELS = {
  title: 'titre',
  date: 'date',
  transcript: 'transcription',
  text: 'texte',
  notice: 'mention',
  name: 'nom',
  description: 'description',
};
const fieldLabel = (p) => FIELD_LABELS[p] || v(p, 'champ');

// Codes worded from the code alone (and the fallback of those that carry details).
const FRENCH = {
  invalid_credentials: 'Identifiant ou mot de passe incorrect.',
  session_expired: 'Votre session a expiré : veuillez vous reconnecter.',
  invalid_api_key: 'Vous n\'êtes pas connecté ou votre session a expiré : veuillez vous reconnecter.',
  revoked_api_key: 'Cette clé d\'API a été révoquée.',
  expired_api_key: 'Cette clé d\'API a expiré.',
  account_disabled: 'Ce compte est désactivé. Adressez-vous à l\'administrateur de la box.',
  csrf_failed: 'La demande a été refusée par sécurité (jeton de formulaire absent ou périmé). Rechargez la page puis réessayez.',
  permission_denied: 'Accès refusé : votre rôle ne permet pas cette action.',
  model_not_allowed: 'Votre compte ou votre clé ne permet pas d\'utiliser ce modèle.',
  bad_pairing_code: 'Le code d\'appairage est incorrect.',
  account_locked: 'Trop de tentatives de connexion : ce compte est temporairement bloqué.',
  address_blocked: 'Trop de tentatives de connexion depuis ce poste : les connexions sont temporairement bloquées.',
  rate_limit_exceeded: 'Vous avez envoyé trop de demandes en peu de temps.',
  daily_quota_exceeded: 'Votre quota quotidien d\'utilisation est atteint. Il sera renouvelé demain.',
  too_many_requests_in_flight: 'Vous avez déjà plusieurs demandes en cours : attendez qu\'elles se terminent.',
  queue_full: 'La box est très sollicitée en ce moment.',
  queue_timeout: 'La box est très sollicitée en ce moment.',
  model_unavailable: 'Le modèle est en cours de chargement ou de redémarrage.',
  model_not_found: 'Ce modèle n\'est pas servi par la box.',
  runtime_restarted: 'Le moteur du modèle a redémarré pendant la rédaction.',
  generation_failed: 'La rédaction a échoué. Veuillez réessayer.',
  internal_error: 'Erreur interne de la box. Veuillez réessayer ; si le problème persiste, prévenez l\'administrateur.',
  audit_unavailable: 'Le journal d\'audit est indisponible : la demande n\'a pas pu être enregistrée. Prévenez l\'administrateur.',
  context_length_exceeded: 'Le texte est trop long pour le modèle. Raccourcissez-le ou utilisez la synthèse de document.',
  prompt_too_long: 'Le texte est trop long pour le modèle. Raccourcissez-le ou utilisez la synthèse de document.',
  invalid_prompt: 'La demande contient un texte que le modèle ne peut pas traiter.',
  unsupported_parameter: 'Une option de la demande n\'est pas prise en charge par la box.',
  charter_not_accepted: 'Une nouvelle version de la charte d\'utilisation doit être acceptée : changez de page pour l\'afficher.',
  charter_changed: 'La charte vient d\'être modifiée : veuillez lire la nouvelle version.',
  history_disabled: 'L\'historique des conversations est désactivé sur cette box.',
  conversation_not_found: 'Cette conversation n\'existe pas ou a expiré.',
  not_found: 'Élément introuvable.',
  user_not_found: 'Utilisateur introuvable.',
  user_exists: 'Un utilisateur porte déjà cet identifiant.',
  weak_password: 'Mot de passe trop faible : au moins 12 caractères, pas un seul caractère répété.',
  last_admin: 'Impossible : c\'est le dernier compte administrateur.',
  key_not_found: 'Clé introuvable.',
  dossier_not_found: 'Aucun dossier n\'accompagne ce modèle.',
  dossier_invalid: 'Le dossier du modèle est invalide.',
  dossier_mismatch: 'Le dossier décrit d\'autres poids que ceux du modèle chargé.',
  store_busy: 'La base de données est occupée. Veuillez réessayer dans un instant.',
  invalid_value: 'Une valeur saisie n\'est pas acceptée.',
  invalid_json: 'Demande mal formée.',
  invalid_content_type: 'Demande mal formée (type de contenu non accepté).',
  request_too_large: 'Le fichier ou le texte envoyé est trop volumineux.',
  request_timeout: 'L\'envoi a été trop lent et a été interrompu. Vérifiez le réseau puis réessayez.',
  stream_interrupted: 'La connexion avec la box a été interrompue avant la fin. Veuillez réessayer.',
  // Updates (console).
  updates_off: 'Les mises à jour sont désactivées sur cette box.',
  system_updates_off: 'Les mises à jour du système sont désactivées sur cette box.',
  update_in_progress: 'Une mise à jour est déjà en cours.',
  model_mismatch: 'Le modèle fourni ne correspond pas à celui attendu par la mise à jour.',
  model_load_failed: 'Le nouveau modèle n\'a pas pu être chargé : le modèle précédent reste en service.',
  // Measures of the console (egress probe, memory bandwidth).
  measurement_running: 'Une mesure de bande passante est déjà en cours ; réessayez dans quelques secondes.',
  measurement_failed: 'La mesure de bande passante mémoire a échoué. Réessayez ; si le problème persiste, consultez le journal du boîtier.',
  // Backups (the administrators' « Sauvegardes » page).
  backup_no_key: 'Aucune clé de sauvegarde sur cette box : créez d\'abord la clé de sauvegarde (page « Sauvegardes »).',
  backup_key_exists: 'La clé de sauvegarde existe déjà : elle n\'a été affichée qu\'une seule fois, à sa création, et la box ne peut plus l\'afficher. Retrouvez-la là où elle a été rangée (avec la clé de récupération du disque).',
  backup_no_destination: 'Aucune destination de sauvegarde n\'est configurée (section [backup], clé destination ou smb) : seules les sauvegardes téléchargées sont possibles.',
  backup_no_smb_password: 'Le mot de passe du compte sur le NAS n\'est pas enregistré sur la box : saisissez-le ci-dessous (« Mot de passe du NAS »), puis réessayez.',
  backup_running: 'Une sauvegarde est déjà en cours : attendez qu\'elle se termine, puis réessayez.',
  backup_not_covered: 'Une partie des données de la box est gardée hors de ce que les sauvegardes couvrent pour l\'instant : la sauvegarde est refusée, pour ne pas donner une archive incomplète. Prévenez le prestataire.',
  backup_failed: 'La sauvegarde a échoué (erreur de lecture ou d\'écriture sur la box ou dans le dossier de destination). Réessayez ; si le problème persiste, prévenez le prestataire.',
  // The agent's own data.
  own_credentials_required: 'Votre historique n\'est accessible qu\'avec un mot de passe que vous avez choisi vous-même : choisissez le vôtre dans « Mes données », puis réessayez.',
  wrong_password: 'Le mot de passe actuel est incorrect.',
  // Documents (civia-documents): the fallbacks of the codes below when no reason came.
  documents_busy: 'Le boîtier lit déjà plusieurs documents : réessayez dans quelques secondes.',
  document_unsupported: 'Format de fichier non pris en charge.',
  document_invalid: 'Le fichier est endommagé ou illisible : impossible d\'en lire le texte.',
  document_encrypted: 'Le fichier est protégé par un mot de passe (chiffré) : impossible d\'en lire le texte. Retirez la protection puis réessayez.',
  document_without_text: 'Aucun texte n\'a pu être lu dans ce fichier.',
  document_too_complex: 'La lecture de ce fichier a dépassé les limites du boîtier (temps ou mémoire) : il est anormalement complexe. Enregistrez-le à nouveau (par exemple en PDF) ou découpez-le, puis réessayez.',
  // Transcription of recordings (civia-speech).
  audio_unsupported: 'Format audio non pris en charge. Formats acceptés : WAV, MP3, OGG (Vorbis ou Opus), FLAC, M4A/AAC.',
  audio_corrupt: 'Le fichier audio est endommagé ou illisible.',
  audio_empty: 'Le fichier ne contient aucun son.',
  audio_too_long: 'L\'enregistrement est trop long pour être transcrit par la box.',
  audio_too_large: 'Le fichier audio est trop volumineux.',
  speech_busy: 'Le service de transcription est occupé.',
  speech_unavailable: 'La transcription n\'est pas disponible pour le moment.',
  speech_failed: 'Le service de transcription s\'est arrêté pendant le traitement ; il redémarre. Si cela se reproduit avec ce fichier, il est sans doute endommagé.',
  speech_disabled: 'La transcription n\'est pas activée sur ce boîtier.',
  speech_cancelled: 'La transcription a été annulée.',
  // The commune's documents (civia-knowledge).
  collection_not_found: 'Cette collection n\'existe pas ou ne vous est pas accessible.',
  document_not_found: 'Ce document n\'existe pas ou ne vous est pas accessible.',
  duplicate_document: 'Ce fichier est déjà dans la collection.',
  knowledge_busy: 'Trop de documents sont en attente d\'indexation : réessayez plus tard.',
  knowledge_unavailable: 'La base documentaire n\'est pas activée sur ce boîtier.',
  embedding_unavailable: 'La recherche par le sens est indisponible : le modèle d\'embeddings n\'est pas chargé.',
  user_required: 'La base documentaire se consulte avec un compte utilisateur.',
  indexing_failed: 'L\'indexation de ce document a échoué.',
  // The embeddings route (scripts of the commune).
  embeddings_disabled: 'Le calcul d\'embeddings n\'est pas activé sur ce boîtier.',
  embeddings_unavailable: 'Le modèle d\'embeddings est en cours de chargement ou de redémarrage.',
  embeddings_busy: 'Le modèle d\'embeddings est très sollicité en ce moment.',
  embeddings_restarted: 'Le modèle d\'embeddings a redémarré pendant le calcul.',
  embeddings_failed: 'Le calcul d\'embeddings a échoué.',
};

// What is said after « Le fichier … a été refusé par mesure de sécurité : ».
const HAZARDS = {
  entry_too_large: () => 'son contenu décompressé est anormalement volumineux (bombe de décompression ?)',
  too_many_entries: (d) => (d.count !== undefined && d.count !== null
    ? `l'archive contient ${v(d.count)} éléments, au-delà de la limite de ${v(d.max)}`
    : 'l\'archive contient trop d\'éléments'),
  doctype: () => 'il contient une déclaration DOCTYPE (entités XML), refusée par sécurité',
};

const OCR_ONLY = 'seule la base documentaire en lit le texte, par reconnaissance de caractères (OCR). Déposez-le dans une collection de la base documentaire.';

// The refusals of civia-documents (`/v1/parse`, exports, uploads to the knowledge base), by
// `details.reason`, whatever their code.
const DOCUMENT_REASONS = {
  empty: () => 'Le fichier est vide.',
  too_large: (d) => (d.bytes !== undefined && d.bytes !== null
    ? `Le fichier est trop volumineux (${megabytes(d.bytes, { up: true })} Mo) : la taille maximale acceptée est de ${megabytes(d.max_bytes, { up: true })} Mo.`
    : `Le fichier dépasse la taille maximale acceptée (${megabytes(d.max_bytes)} Mo).`),
  unsupported: () => 'Format de fichier non pris en charge. Formats acceptés : PDF, DOCX (Word), ODT (LibreOffice), texte (TXT, Markdown), HTML et images numérisées (PNG, JPEG, TIFF). Enregistrez le document dans l\'un de ces formats puis réessayez.',
  format_mismatch: (d) => `Le fichier porte l'extension ou le type ${v(d.declared)} mais son contenu est au format ${v(d.detected)} : renommez-le correctement puis réessayez.`,
  corrupt: (d) => `Le ${file(d)} est endommagé ou illisible : impossible d'en lire le texte.`,
  encrypted: (d) => `Le ${file(d)} est protégé par un mot de passe (chiffré) : impossible d'en lire le texte. Retirez la protection puis réessayez.`,
  no_text: () => `Ce PDF ne contient pas de texte (document scanné ?) : ${OCR_ONLY}`,
  needs_ocr: (d) => `Ce ${file(d)} est une image numérisée : ${OCR_ONLY}`,
  image_too_large: (d) => `L'image fait ${v(d.width)} × ${v(d.height)} pixels, au-delà des ${Number.isFinite(Number(d.max_pixels)) ? Math.floor(Number(d.max_pixels) / 1e6) : '?'} millions de pixels que la reconnaissance de texte (OCR) accepte : numérisez-la à une résolution plus basse (300 dpi suffisent) puis réessayez.`,
  too_many_pages: (d) => `L'image contient ${v(d.pages)} pages, au-delà des ${v(d.max_pages)} pages que la reconnaissance de texte (OCR) accepte en une fois : découpez-la puis réessayez.`,
  ocr_unavailable: () => 'La reconnaissance de texte (OCR) n\'est pas installée sur ce boîtier : les documents numérisés ne peuvent pas être lus. Prévenez l\'administrateur du boîtier.',
  ocr_failed: (d) => `La reconnaissance de texte (OCR)${d.page !== undefined && d.page !== null ? ` de la page ${d.page}` : ''} a dépassé les limites du boîtier (temps ou mémoire) ou a échoué : la numérisation est peut-être trop grande ou endommagée. Numérisez le document à nouveau (300 dpi) puis réessayez.`,
  ocr_no_text: (d) => `Aucun texte n'a pu être lu dans ce ${file(d)}, même par reconnaissance de caractères (OCR) : la numérisation est peut-être blanche ou de trop mauvaise qualité.`,
  hostile: (d) => {
    const hazard = HAZARDS[d.hazard];
    const what = hazard ? hazard(d) : 'son contenu présente un risque';
    return `Le ${file(d)} a été refusé par mesure de sécurité : ${what}.`;
  },
  invalid_draft: (d) => `Le brouillon ne peut pas être exporté : le champ « ${fieldLabel(d.field)} » est invalide.`,
  export_failed: (d) => `L'export au format ${v(d.format)} a échoué. Réessayez ou copiez le texte.`,
  exhausted: () => FRENCH.document_too_complex,
  extractor_failed: () => 'La lecture des documents est indisponible sur le boîtier. Réessayez plus tard.',
};
const DOCUMENT_CODES = new Set([
  'request_too_large', 'document_unsupported', 'document_invalid', 'document_encrypted',
  'document_without_text', 'document_too_complex', 'internal_error', 'invalid_value',
]);

// `invalid_value` of the knowledge routes (civia-knowledge's checks), by reason.
const KNOWLEDGE_INVALID = {
  name_length: (d) => `Le nom doit compter de 1 à ${v(d.max)} caractères, sans caractère de contrôle.`,
  description_length: (d) => `La description dépasse ${v(d.max)} caractères.`,
  date_format: () => 'La date du document (métadonnée « date ») doit être au format AAAA-MM-JJ.',
  search_dates_format: () => 'Les dates de recherche doivent être au format AAAA-MM-JJ.',
  empty_file: () => 'Le fichier est vide.',
  file_too_large: (d) => `Le fichier dépasse la taille maximale de ${megabytes(d.max_bytes)} Mo.`,
  prompt_length: (d) => `La question doit compter de 1 à ${v(d.max)} caractères.`,
  too_many_listed: (d) => `Une recherche porte sur ${v(d.max)} collections et ${v(d.max)} documents au plus.`,
  k_range: (d) => `Le nombre de résultats k doit être compris entre 1 et ${v(d.max)}.`,
  collection_id: () => '`collection` doit être l\'identifiant numérique d\'une collection.',
  metadata_object: () => 'Les métadonnées doivent être un objet JSON.',
};

// `invalid_value` of the meeting minutes, by reason (the field is the error's `param`).
const MEETING_INVALID = {
  too_long: (d) => `La transcription dépasse ${v(d.max_chars)} caractères.`,
  printable: (d, param) => `« ${fieldLabel(param)} » : ${v(d.max_chars)} caractères imprimables au plus.`,
};

// `invalid_value` without a reason, by the field it names (an empty transcript for the
// minutes; the console's egress probe).
const INVALID_PARAM = {
  transcript: 'La transcription est vide.',
  address: 'L\'adresse doit être une adresse IP suivie d\'un port, par exemple 192.0.2.10:443 ou [2001:db8::1]:443 (pas de nom : le boîtier ne résout aucun nom pour une sonde).',
  timeout_ms: 'Le délai d\'attente (timeout_ms) doit être un nombre entier de millisecondes entre 1 et 5000.',
};

// `permission_denied` of the knowledge routes, by reason.
const PERMISSION = {
  public_is_admin: 'Seul un administrateur peut publier une collection pour toute la commune.',
  owner_sets_visibility: 'Seul le propriétaire de la collection peut changer qui la voit.',
  read_only: 'Vous pouvez consulter cette collection, pas la modifier.',
};

// The backups' refusals that name their case (`details.reason`).
const BACKUP_REASONS = {
  sealed: () => 'Les secrets de cette box sont scellés par la puce TPM : leur sauvegarde n\'est pas encore prise en charge, la sauvegarde est donc refusée (elle serait incomplète). Prévenez le prestataire.',
  outside: () => 'Les secrets ou la base documentaire de cette box sont configurés hors de son répertoire d\'état : les sauvegardes ne les couvrent pas encore, la sauvegarde est donc refusée (elle serait incomplète). Prévenez le prestataire.',
  bad_recipient: () => 'La moitié publique de la clé de sauvegarde, gardée par la box, est illisible : aucune sauvegarde ne peut être chiffrée. Prévenez le prestataire (il la remet depuis une copie, ou la retire pour créer une nouvelle clé).',
  io: () => FRENCH.backup_failed,
  smb: () => 'Le partage du NAS n\'a pas pu être joint ou a refusé l\'opération : vérifiez que le NAS est allumé et joignable depuis la box, que le compte et son mot de passe sont bons et que ce compte peut écrire dans le dossier, puis réessayez.',
  no_smb_password: () => FRENCH.backup_no_smb_password,
  smb_password_unreadable: () => 'Le mot de passe du NAS gardé par la box ne peut plus être lu (il a été enregistré sur une autre box ou pour un autre partage) : saisissez-le de nouveau ci-dessous (« Mot de passe du NAS »), puis réessayez.',
};

// \`invalid_value\` of the backups (the NAS password), by reason.
const BACKUP_INVALID = {
  bad_smb_password: () => 'Le mot de passe du NAS doit compter de 1 à 256 caractères, sans caractère nul.',
};

// A knowledge document whose indexing failed (`error_details` with code `indexing_failed`).
const INDEXING = {
  lost: () => 'Le fichier déposé a été perdu avant son indexation : déposez-le à nouveau.',
  unreadable: () => 'Ce document n\'a pas pu être lu.',
  no_text: () => 'Aucun texte n\'a pu être lu dans ce document.',
  too_many_chunks: (d) => `Document trop long : plus de ${v(d.max)} passages à indexer.`,
  embedding_unavailable: () => 'Le modèle d\'embeddings est indisponible : réessayez le dépôt plus tard.',
  internal: () => 'Erreur interne pendant l\'indexation.',
};

const has = (table, key) => typeof key === 'string' && Object.prototype.hasOwnProperty.call(table, key);

/** The sentence of a code that carries details, or null to use the code's own entry. */
function detailed(code, d, param) {
  const reason = d.reason;
  switch (code) {
    case 'invalid_value':
      if (has(KNOWLEDGE_INVALID, reason)) return KNOWLEDGE_INVALID[reason](d);
      if (has(MEETING_INVALID, reason)) return MEETING_INVALID[reason](d, param);
      if (has(DOCUMENT_REASONS, reason)) return DOCUMENT_REASONS[reason](d);
      if (has(BACKUP_INVALID, reason)) return BACKUP_INVALID[reason](d);
      if (!reason && has(INVALID_PARAM, param)) return INVALID_PARAM[param];
      return null;
    case 'permission_denied':
      return has(PERMISSION, reason) ? PERMISSION[reason] : null;
    case 'duplicate_document':
      return d.document_id !== undefined && d.document_id !== null
        ? `Ce fichier est déjà dans la collection (document ${d.document_id}).` : null;
    case 'audio_too_large':
      return d.max_bytes !== undefined && d.max_bytes !== null
        ? `Le fichier dépasse la taille maximale de ${megabytes(d.max_bytes, { decimals: 1 })} Mo.` : null;
    case 'speech_busy':
      return d.waiting !== undefined && d.waiting !== null
        ? `Le service de transcription est occupé (${d.waiting} enregistrement(s) en attente).` : null;
    case 'indexing_failed':
      return has(INDEXING, reason) ? INDEXING[reason](d) : null;
    case 'backup_no_key':
    case 'backup_not_covered':
    case 'backup_failed':
    case 'backup_no_smb_password':
      return has(BACKUP_REASONS, reason) ? BACKUP_REASONS[reason](d) : null;
    default:
      if (DOCUMENT_CODES.has(code) && has(DOCUMENT_REASONS, reason)) return DOCUMENT_REASONS[reason](d);
      return null;
  }
}

/**
 * The French sentence of a refusal: from its `code`, its `details` ({reason, …values}) and
 * its `param`; null when the code is unknown (the caller words it from the HTTP status).
 */
export function errorFrench(code, details, param) {
  if (!code) return null;
  const d = details && typeof details === 'object' ? details : {};
  return detailed(code, d, param || null) || (has(FRENCH, code) ? FRENCH[code] : null);
}

// The names of the kinds of personal data (`kinds` of the `personal_data` warning).
const PII_KINDS = {
  nir: 'numéro de sécurité sociale',
  iban: 'IBAN',
  phone: 'numéro de téléphone',
  email: 'adresse électronique',
};

/** One warning of an answer's `civia.warnings` ({code, message, kinds?}), in French. */
export function warningFrench(warning) {
  const w = warning || {};
  switch (w.code) {
    case 'personal_data': {
      const names = (Array.isArray(w.kinds) ? w.kinds : [])
        .map((k) => (has(PII_KINDS, k) ? PII_KINDS[k] : 'autre donnée personnelle'))
        .filter((n, i, all) => all.indexOf(n) === i);
      return `Données personnelles détectées dans la demande${names.length ? ` (${names.join(', ')})` : ''} : vérifiez qu'elles sont nécessaires et relisez la réponse avant tout envoi.`;
    }
    case 'system_prompt_leak':
      return 'La réponse a été interrompue car elle reprenait les consignes internes de l\'assistant.';
    case 'history_not_saved':
      return 'La réponse n\'a pas pu être enregistrée dans votre historique.';
    default:
      return `La box a signalé un point à vérifier${w.code ? ` (${w.code})` : ''} : relisez attentivement la réponse avant de l'utiliser.`;
  }
}

/**
 * Why a knowledge document failed, from its `error_details` ({code, reason, …}): an indexing
 * failure, or a refusal of civia-documents worded like a refused upload. null without details
 * (rows from before them: the caller shows the document's `error`).
 */
export function documentFailureFrench(details) {
  if (!details || typeof details !== 'object') return null;
  const code = details.code || 'indexing_failed';
  // Already in the knowledge base: its OCR read nothing, or is off on this box.
  if (details.reason === 'no_text' || details.reason === 'needs_ocr') {
    return 'Aucun texte n\'a pu être lu dans ce document (document numérisé ? la reconnaissance de caractères n\'a rien donné ou n\'est pas activée sur ce boîtier).';
  }
  const said = detailed(code, details, null)
    || (has(DOCUMENT_REASONS, details.reason) ? DOCUMENT_REASONS[details.reason](details) : null)
    || (has(INDEXING, details.reason) ? INDEXING[details.reason](details) : null);
  if (said) return said;
  return code !== 'indexing_failed' && has(FRENCH, code) ? FRENCH[code] : FRENCH.indexing_failed;
}
