// The administrators' « Sauvegardes » page (docs/backup.md): the backup key, created once and
// shown once (text, QR code, copy, print); a backup now to the destination, or downloaded;
// the progress of the backup being written, polled every second, and its outcome announced;
// the last good backup, the last failure, the staleness warning; the schedule and this box's
// archives in the destination: a folder, or the mairie's NAS share (`[backup] smb`), whose
// account password is given here, kept encrypted by the box and never shown again. The box's
// English texts (an outcome's `error`, the destination's error) are never shown: the page
// says what to do in French.
import { h, clear, append, newId, field, messageZones, formatDate, formatNumber, copyText } from '../dom.js';
import { api, ApiError } from '../api.js';
import { errorFrench } from '../messages.js';
import { qrSvg } from '../qr.js';
import { back, table, dl } from './admin.js';

const POLL_MS = 1000;
/** How long the page waits for a download it started to show up in the box's status. */
const EXPECT_MS = 30_000;
/** The most characters the box keeps for the NAS password. */
const SMB_PASSWORD_MAX = 256;
/** The archive streamed as it is written: a plain link, so that the browser saves it to disk. */
const DOWNLOAD_PATH = '/admin/backup/download';
/** The class on <body> while a key is on the page: printing shows the key block only. */
const PRINT_CLASS = 'impression-cle';

const errText = (e, fallback) => (e instanceof ApiError ? e.french : fallback);

/** Unix seconds of an RFC 3339 date (null when absent or unreadable). */
function unix(rfc3339) {
  const t = rfc3339 ? Date.parse(rfc3339) : NaN;
  return Number.isFinite(t) ? Math.floor(t / 1000) : null;
}

/** A size in megabytes (Mo, 1 Mo = 1 048 576 octets), one decimal. */
function megabytes(bytes) {
  const n = Number(bytes) / (1024 * 1024);
  if (!Number.isFinite(n) || n < 0) return '? Mo';
  if (n > 0 && n < 0.1) return 'moins de 0,1 Mo';
  return `${n.toLocaleString('fr-FR', { minimumFractionDigits: n < 10 ? 1 : 0, maximumFractionDigits: 1 })} Mo`;
}

const hours = (n) => `${formatNumber(n)} heure${Number(n) > 1 ? 's' : ''}`;

/** Where the archives go: « dans le dossier de destination » or « sur le partage du NAS ». */
const inDest = (nas) => (nas ? 'sur le partage du NAS' : 'dans le dossier de destination');
const toDest = (nas) => (nas ? 'vers le partage du NAS' : 'vers le dossier de destination');
/** Where a backup went (`to` of an outcome). */
const where = (to, nas) => (to === 'download' ? 'téléchargée' : inDest(nas));
/** What to check when the destination fails. */
const checkDest = (nas) => (nas
  ? 'vérifiez que le NAS de la mairie est allumé et joignable depuis la box, que le compte et son mot de passe sont bons, que ce compte peut écrire dans le dossier et qu\'il reste de la place'
  : 'vérifiez que le dossier est bien monté (NAS de la mairie, disque USB), qu\'il reste de la place et que la box peut y écrire');
/** The NAS account, with its domain: « civia (domaine MAIRIE) ». */
const account = (smb) => (smb.domain ? `${smb.user} (domaine ${smb.domain})` : smb.user);

/** The staleness warning's sentences, or null when a recent backup succeeded. */
function staleText(st) {
  if (!st.too_old) return null;
  const first = st.last_success
    ? `Aucune sauvegarde réussie depuis plus de ${hours(st.max_age_hours)} (la dernière date du ${formatDate(st.last_success.at_unix)}).`
    : 'Aucune sauvegarde n\'a encore été faite.';
  let todo;
  if (!st.key) todo = 'Créez la clé de sauvegarde, puis faites une sauvegarde : sans sauvegarde, les comptes, l\'historique, le journal d\'audit et les documents de la commune seraient perdus avec la box.';
  else if (st.smb && !st.smb.password_set) todo = 'Enregistrez le mot de passe du compte sur le NAS (plus bas, « Mot de passe du NAS »), puis faites une sauvegarde maintenant.';
  else if (st.smb && st.last_success) todo = 'La sauvegarde automatique n\'aboutit plus : vérifiez que le NAS de la mairie est allumé et joignable depuis la box et qu\'il reste de la place, puis faites une sauvegarde maintenant.';
  else if (st.destination && st.last_success) todo = 'La sauvegarde automatique n\'aboutit plus : vérifiez que le dossier de destination est bien monté (NAS de la mairie, disque USB) et qu\'il reste de la place, puis faites une sauvegarde maintenant.';
  else if (st.destination) todo = 'Faites une sauvegarde maintenant, sans attendre la sauvegarde automatique de la nuit.';
  else todo = 'Téléchargez une sauvegarde maintenant et rangez-la en lieu sûr (NAS de la mairie, clé USB).';
  return `${first} ${todo}`;
}

/** The sentence announced when a backup ends (`nas`: the destination is the NAS share). */
function outcomeText(o, nas) {
  if (o.ok && o.to === 'download') {
    return `Sauvegarde téléchargée (${megabytes(o.bytes)}, ${formatNumber(o.files)} fichiers) : rangez le fichier en lieu sûr (NAS de la mairie, clé USB).`;
  }
  if (o.ok) {
    return `Sauvegarde terminée : archive « ${o.archive || '?'} » (${megabytes(o.bytes)}, ${formatNumber(o.files)} fichiers) écrite ${inDest(nas)}.`;
  }
  return o.to === 'download'
    ? 'Le téléchargement de la sauvegarde a échoué : le fichier reçu est incomplet et inutilisable. Réessayez ; si le problème persiste, prévenez le prestataire.'
    : `La sauvegarde ${toDest(nas)} a échoué : ${checkDest(nas)}, puis réessayez.`;
}

/** Replaces `zone`'s content with `build()` when `key` differs from the last one drawn. */
function redraw(zone, key, build) {
  if (zone.dataset.drawn === key) return;
  zone.dataset.drawn = key;
  clear(zone);
  append(zone, build());
}

/** The key, shown once: text, QR code, copy and print. */
function keyBlock(key) {
  const titleId = newId('cle-titre');
  const status = h('p', { class: 'statut', role: 'status', 'aria-live': 'polite' });
  const title = h('h3', { id: titleId, tabindex: '-1', text: 'Votre clé de sauvegarde' });
  const copy = h('button', { type: 'button', class: 'bouton bouton-secondaire', on: { click: async () => {
    status.textContent = (await copyText(key)) ? 'Clé copiée dans le presse-papiers.' : 'La copie a échoué : sélectionnez le texte de la clé et copiez-le.';
  } } }, 'Copier la clé');
  const print = h('button', { type: 'button', class: 'bouton bouton-secondaire', on: { click: () => window.print() } }, 'Imprimer la clé');
  const block = h('section', { class: 'alerte alerte-secret cle-sauvegarde', 'aria-labelledby': titleId },
    title,
    h('p', {}, h('strong', { text: 'Affichée une seule fois. ' }),
      'Imprimez-la ou recopiez-la maintenant, puis rangez-la avec la clé de récupération du disque (coffre de la mairie), ou sur une clé USB gardée à part. La box n\'en garde que la moitié publique : elle peut chiffrer les sauvegardes, pas les relire, et ne pourra plus afficher cette clé. Sans elle, aucune sauvegarde ne peut être restaurée.'),
    h('pre', { class: 'cle-texte' }, h('code', { text: key })),
    h('figure', { class: 'cle-qr' },
      qrSvg(key, { label: 'QR code de la clé de sauvegarde', className: 'qr-cle' }),
      h('figcaption', { text: 'La même clé en QR code, pour la saisir sans erreur lors d\'une restauration.' })),
    h('p', { class: 'cle-date', text: `Clé de sauvegarde de la box Civia, créée le ${formatDate(Math.floor(Date.now() / 1000))}. Restauration : civia backup restore <archive> --key-file <fichier contenant cette clé>.` }),
    h('div', { class: 'actions' }, copy, print),
    status);
  return { block, title };
}

export async function backupView(main, ctx) {
  let st = await api('GET', '/admin/backup', undefined, { signal: ctx.signal });
  const zones = messageZones();
  const warning = h('div', { class: 'zone-alerte', role: 'alert' });
  const keyState = h('div');
  const keyZone = h('div', { class: 'zone-cle' });
  const lastZone = h('div');
  const destZone = h('div');
  const archivesZone = h('div');
  /** Whether the destination is the NAS share, and whether its password is still to give. */
  const nas = () => !!st.smb;
  const noPassword = () => !!st.smb && !st.smb.password_set;

  // Actions. While a backup runs they stay focusable (aria-disabled) and say why on a click;
  // without a key or a destination they are disabled, with the reason as their description.
  const nowHint = h('p', { class: 'aide', id: newId('aide-sauvegarde') });
  const nowBtn = h('button', { type: 'button', class: 'bouton bouton-principal', 'aria-describedby': nowHint.id }, 'Sauvegarder maintenant');
  const dlHint = h('p', { class: 'aide', id: newId('aide-telechargement') });
  const dlBtn = h('button', { type: 'button', class: 'bouton bouton-secondaire', 'aria-describedby': dlHint.id }, 'Télécharger une sauvegarde');

  // Progress of the backup being written (the bar follows every poll; the outcome is announced).
  const progressId = newId('avancement');
  const progressLabel = h('label', { for: progressId, class: 'etiquette', text: 'Sauvegarde en cours' });
  const progress = h('progress', { id: progressId, class: 'barre-avancement' });
  const progressText = h('p', { class: 'aide' });
  const progressBox = h('div', { class: 'progression', hidden: true }, progressLabel, progress, progressText);

  // The NAS password (`[backup] smb` only): given here, kept encrypted by the box, never
  // answered back. Drawn once, outside the zones redrawn by the polls (the field keeps its
  // text and the focus while a backup runs).
  const smbZones = messageZones();
  const smbTitleId = newId('nas-mot-de-passe');
  const smbPassword = field({
    label: 'Mot de passe du compte sur le NAS', name: 'smb-password', type: 'password', required: true,
    autocomplete: 'new-password',
    hint: 'La box garde ce mot de passe chiffré, avec une clé qu\'elle seule possède, et ne l\'affichera plus jamais : pour le changer, saisissez simplement le nouveau.',
    attrs: { spellcheck: 'false' },
  });
  const smbSubmit = h('button', { type: 'submit', class: 'bouton bouton-principal' }, 'Enregistrer le mot de passe');
  const smbForm = h('form', { class: 'formulaire', novalidate: true, 'aria-labelledby': smbTitleId, hidden: !st.smb },
    h('h3', { id: smbTitleId, text: 'Mot de passe du NAS' }),
    smbPassword.wrap, h('div', { class: 'actions' }, smbSubmit), smbZones.status, smbZones.alert);

  let stopped = false;
  let timer = 0;
  let wasRunning = !!st.running;
  let expectingSince = 0; // a backup started here (POST or download), not seen in the status yet
  let refusedForPassword = false; // the alert holds « Sauvegarder maintenant »'s refusal for the NAS password
  const lastKey = (s) => (s.last ? JSON.stringify(s.last) : '');

  ctx.signal.addEventListener('abort', () => {
    stopped = true;
    clearTimeout(timer);
    document.body.classList.remove(PRINT_CLASS);
  });

  function showWarning() {
    const text = staleText(st);
    redraw(warning, text || '', () => (text
      ? h('p', { class: 'alerte alerte-avertissement' }, h('strong', { text: 'Attention : ' }), text)
      : null));
  }

  function showKeyState() {
    const shown = keyZone.childElementCount > 0;
    redraw(keyState, `${st.key}/${shown}`, () => {
      if (st.key && shown) return h('p', { text: 'La clé de sauvegarde vient d\'être créée : la voici, pour la seule et unique fois.' });
      if (st.key) return h('p', { text: 'La clé de sauvegarde existe. Elle a été affichée une seule fois, à sa création : la box n\'en garde que la moitié publique et ne peut plus l\'afficher. Elle doit être rangée avec la clé de récupération du disque ; sans elle, aucune sauvegarde ne peut être restaurée.' });
      return [
        h('p', { text: 'Aucune clé de sauvegarde : créez-la avant toute sauvegarde. Elle ne sera affichée qu\'une seule fois (en texte et en QR code) : préparez de quoi l\'imprimer ou la recopier, puis rangez-la avec la clé de récupération du disque (coffre de la mairie).' }),
        h('div', { class: 'actions' }, h('button', { type: 'button', class: 'bouton bouton-principal', on: { click: createKey } }, 'Créer la clé de sauvegarde')),
      ];
    });
  }

  function showActions() {
    const running = !!st.running;
    nowBtn.disabled = !st.key || !st.destination || noPassword();
    dlBtn.disabled = !st.key;
    for (const b of [nowBtn, dlBtn]) {
      if (running && !b.disabled) b.setAttribute('aria-disabled', 'true');
      else b.removeAttribute('aria-disabled');
    }
    if (!st.key) nowHint.textContent = 'Indisponible : créez d\'abord la clé de sauvegarde.';
    else if (!st.destination) nowHint.textContent = 'Indisponible : aucune destination configurée (voir « Sauvegarde automatique »).';
    else if (noPassword()) nowHint.textContent = 'Indisponible : enregistrez d\'abord le mot de passe du compte sur le NAS (voir « Mot de passe du NAS »).';
    else nowHint.textContent = `Écrit tout de suite une archive chiffrée ${inDest(nas())}, sans arrêter la box : les agents continuent de travailler.`;
    dlHint.textContent = st.key
      ? 'La box prépare une archive chiffrée à l\'instant et le navigateur l\'enregistre (fichier .civia-backup) : rangez-la sur le NAS de la mairie ou une clé USB. Rien n\'est gardé sur la box.'
      : 'Indisponible : créez d\'abord la clé de sauvegarde.';
  }

  function showProgress() {
    const r = st.running;
    progressBox.hidden = !r;
    if (!r) return;
    const p = r.progress || {};
    progressLabel.textContent = r.to === 'download' ? 'Sauvegarde en cours (téléchargement)' : `Sauvegarde en cours (${toDest(nas())})`;
    if (p.bytes_total > 0) {
      progress.max = p.bytes_total;
      progress.value = Math.min(p.bytes_done || 0, p.bytes_total);
    } else {
      progress.removeAttribute('value'); // indeterminate until the box has counted the files
    }
    progressText.textContent = p.files_total > 0
      ? `${formatNumber(p.files_done || 0)} fichiers sur ${formatNumber(p.files_total)}, ${megabytes(p.bytes_done || 0)} sur ${megabytes(p.bytes_total)}. Commencée le ${formatDate(unix(r.started_at))}.`
      : `Préparation de la sauvegarde… Commencée le ${formatDate(unix(r.started_at))}.`;
  }

  function showLast() {
    redraw(lastZone, JSON.stringify([st.last, st.last_success, nas()]), () => {
      const ok = st.last_success;
      const out = [ok
        ? dl([
          ['Dernière sauvegarde réussie', `${formatDate(ok.at_unix)} (${where(ok.to, nas())})`],
          ['Données sauvegardées', megabytes(ok.bytes)],
          ['Fichiers', formatNumber(ok.files)],
          ['Archive', ok.archive ? h('code', { text: ok.archive }) : 'fichier téléchargé par un administrateur'],
        ])
        : h('p', { class: 'vide', text: 'Aucune sauvegarde réussie pour l\'instant.' })];
      const bad = st.last && !st.last.ok ? st.last : null;
      if (bad) {
        out.push(h('p', { class: 'alerte alerte-erreur' }, h('strong', { text: 'Dernière sauvegarde en échec : ' }),
          `le ${formatDate(bad.at_unix)} (${bad.to === 'download' ? 'téléchargement' : toDest(nas())}). `,
          outcomeText(bad, nas())));
      }
      return out;
    });
  }

  /** Why the destination could not be listed, in French (null when it could). */
  function destinationTrouble() {
    if (!st.destination_error) return null;
    if (noPassword()) return null; // said by « Mot de passe à saisir »
    return nas()
      ? [h('strong', { text: 'Partage du NAS inaccessible : ' }),
        'la box n\'a pas pu lister le partage. Vérifiez que le NAS de la mairie est allumé et joignable depuis la box, que le compte et son mot de passe sont bons et que ce compte a accès au dossier.']
      : [h('strong', { text: 'Dossier inaccessible : ' }),
        'la box ne peut pas lire le dossier de destination. Vérifiez qu\'il est bien monté (partage du NAS de la mairie, disque USB) et que la box peut y écrire.'];
  }

  function showDestination() {
    redraw(destZone, JSON.stringify([st.destination, st.smb, st.destination_error ? 1 : 0, st.next_run, st.key, st.hour_utc, st.keep, st.max_age_hours]), () => {
      if (!st.destination) {
        return [
          h('p', { class: 'alerte alerte-info', text: 'Aucune destination configurée : seules les sauvegardes téléchargées sont possibles.' }),
          h('p', { class: 'aide' }, 'Pour une sauvegarde automatique chaque nuit, le prestataire indique dans la configuration de la box, section ',
            h('code', { text: '[backup]' }), ', le partage du NAS de la mairie (clés ', h('code', { text: 'smb' }), ' et ',
            h('code', { text: 'smb_user' }), ', par exemple ', h('code', { text: 'smb = "//192.168.1.20/sauvegardes"' }),
            ') ou le dossier où est monté un disque USB (clé ', h('code', { text: 'destination' }), ', par exemple ',
            h('code', { text: 'destination = "/mnt/sauvegardes"' }), ').'),
        ];
      }
      const smb = st.smb;
      const trouble = destinationTrouble();
      return [
        dl([
          smb ? ['Partage du NAS', h('code', { text: st.destination })] : ['Dossier de destination', h('code', { text: st.destination })],
          smb ? ['Compte', account(smb)] : null,
          smb ? ['Échanges avec le NAS', smb.encrypt ? 'chiffrés (SMB 3)' : 'signés (les archives sont chiffrées de toute façon)'] : null,
          smb ? ['Mot de passe du compte', smb.password_set
            ? 'Mot de passe enregistré'
            : [h('strong', { text: 'Mot de passe à saisir' }), ' : sans lui, la box ne peut pas écrire sur le NAS (formulaire ci-dessous).']] : null,
          ['Fréquence', `chaque jour à ${st.hour_utc} h UTC`],
          ['Prochaine sauvegarde', st.next_run ? formatDate(unix(st.next_run)) : 'aucune : créez d\'abord la clé de sauvegarde'],
          ['Archives gardées', `les ${formatNumber(st.keep)} dernières de cette box (les plus anciennes sont supprimées)`],
          ['Avertissement', `sans sauvegarde réussie depuis ${hours(st.max_age_hours)}`],
        ]),
        trouble ? h('p', { class: 'alerte alerte-erreur' }, trouble) : null,
      ];
    });
    smbForm.hidden = !st.smb;
  }

  function showArchives() {
    redraw(archivesZone, JSON.stringify([st.destination, st.key, st.archives, !!st.destination_error, st.smb]), () => {
      if (!st.destination) return h('p', { class: 'vide', text: 'Sans destination configurée, la box ne garde aucune archive.' });
      if (!st.key) return h('p', { class: 'vide', text: 'Aucune archive : créez d\'abord la clé de sauvegarde.' });
      if (noPassword()) return h('p', { class: 'vide', text: 'Liste indisponible : le mot de passe du compte sur le NAS n\'est pas enregistré.' });
      if (st.destination_error) {
        return h('p', { class: 'vide', text: nas() ? 'Liste indisponible : le partage du NAS est inaccessible.' : 'Liste indisponible : le dossier de destination est inaccessible.' });
      }
      const list = st.archives || [];
      if (!list.length) return h('p', { class: 'vide', text: `Aucune archive de cette box ${inDest(nas())}.` });
      return table(`Archives de cette box ${inDest(nas())} (${formatNumber(list.length)}), de la plus récente à la plus ancienne`,
        ['Archive', 'Taille', 'Écrite le'],
        list.map((a) => [h('code', { text: a.name }), megabytes(a.bytes), formatDate(unix(a.modified))]));
    });
  }

  function show() {
    showWarning();
    showKeyState();
    showActions();
    showProgress();
    showLast();
    showDestination();
    showArchives();
  }

  // ---- polling while a backup runs ----

  // Also while the box lists the NAS's folder (its archives come a moment later).
  const watching = () => !!st.running || expectingSince > 0 || !!st.listing_pending;

  function schedule() {
    if (stopped || timer || !watching()) return;
    timer = setTimeout(refresh, POLL_MS);
  }

  /** Takes a new status: announces the end of a backup (the running one, or a new outcome). */
  function take(fresh) {
    const before = st;
    st = fresh;
    if (st.running) {
      wasRunning = true;
      expectingSince = 0;
    } else if (wasRunning || lastKey(before) !== lastKey(st)) {
      wasRunning = false;
      expectingSince = 0;
      refusedForPassword = false;
      if (st.last) {
        if (st.last.ok) zones.info(outcomeText(st.last, nas()));
        else { zones.info(''); zones.error(outcomeText(st.last, nas())); }
      }
    } else if (expectingSince && Date.now() - expectingSince > EXPECT_MS) {
      expectingSince = 0;
    }
    show();
  }

  async function refresh() {
    clearTimeout(timer); // called directly too (after an action): one poll at a time
    timer = 0;
    if (stopped) return;
    try {
      const fresh = await api('GET', '/admin/backup', undefined, { signal: ctx.signal });
      if (stopped) return;
      take(fresh);
    } catch (e) {
      if (stopped || (e && e.name === 'AbortError')) return;
      // Transient (the box busy, a network hiccup): keep polling while a backup runs.
    }
    schedule();
  }

  // ---- actions ----

  async function createKey(ev) {
    const button = ev.currentTarget;
    zones.clearAll();
    button.disabled = true;
    try {
      const r = await api('POST', '/admin/backup/key');
      const { block, title } = keyBlock(r.key);
      clear(keyZone);
      append(keyZone, block);
      document.body.classList.add(PRINT_CLASS);
      st = { ...st, key: true };
      show();
      title.focus();
      await refresh();
    } catch (e) {
      zones.error(errText(e, 'La création de la clé a échoué.'));
      button.disabled = false;
      if (e instanceof ApiError && e.code === 'backup_key_exists') await refresh();
    }
  }

  nowBtn.addEventListener('click', async () => {
    if (st.running) { zones.info(''); zones.error(errorFrench('backup_running')); return; }
    zones.clearAll();
    try {
      const r = await api('POST', '/admin/backup');
      zones.info(`Sauvegarde lancée ${toDest(nas())}…`);
      if (r && r.running) take({ ...st, running: r.running });
      else expectingSince = Date.now(); // already over: the next status has its outcome
      schedule();
    } catch (e) {
      zones.error(errText(e, 'La sauvegarde n\'a pas pu être lancée.'));
      refusedForPassword = e instanceof ApiError && e.code === 'backup_no_smb_password';
      await refresh();
    }
  });

  // The NAS password: checked here as the box does (1 to 256 characters, no NUL), then kept.
  let savingPassword = false;
  smbForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (savingPassword) return;
    smbZones.clearAll();
    const password = smbPassword.input.value;
    const length = [...password].length;
    if (!length || length > SMB_PASSWORD_MAX || password.includes('\0')) {
      smbPassword.input.setAttribute('aria-invalid', 'true');
      smbZones.error(length ? errorFrench('invalid_value', { reason: 'bad_smb_password' }) : 'Saisissez le mot de passe du compte sur le NAS.');
      smbPassword.input.focus();
      return;
    }
    smbPassword.input.removeAttribute('aria-invalid');
    // aria-disabled, not disabled: the button keeps the focus while the box answers.
    savingPassword = true;
    smbSubmit.setAttribute('aria-disabled', 'true');
    let saved = false;
    try {
      await api('PUT', '/admin/backup/smb-password', { password });
      saved = true;
      smbPassword.input.value = '';
      smbZones.info('Mot de passe du NAS enregistré : la box s\'en servira pour chaque sauvegarde vers le partage.');
      if (refusedForPassword) zones.error(''); // « Sauvegarder maintenant »'s refusal no longer stands
      refusedForPassword = false;
    } catch (e) {
      if (e instanceof ApiError && e.code === 'backup_failed') {
        smbZones.error('L\'enregistrement du mot de passe a échoué (erreur d\'écriture sur la box). Réessayez ; si le problème persiste, prévenez le prestataire.');
      } else {
        smbZones.error(errText(e, 'L\'enregistrement du mot de passe a échoué.'));
      }
      if (e instanceof ApiError && e.code === 'invalid_value') smbPassword.input.setAttribute('aria-invalid', 'true');
      if (e instanceof ApiError && e.code === 'backup_no_destination') await refresh();
    } finally {
      savingPassword = false;
      smbSubmit.removeAttribute('aria-disabled');
    }
    // The new status: « Mot de passe enregistré », and the share listed with it.
    if (saved) await refresh();
  });

  dlBtn.addEventListener('click', () => {
    if (st.running) { zones.info(''); zones.error(errorFrench('backup_running')); return; }
    zones.clearAll();
    // A link, not fetch(): the browser writes the archive to disk as the box streams it.
    const a = h('a', { href: DOWNLOAD_PATH, download: '', class: 'visuellement-cache' }, 'Télécharger');
    append(document.body, a);
    a.click();
    a.remove();
    zones.info('Sauvegarde en préparation : le téléchargement commence…');
    expectingSince = Date.now();
    schedule();
  });

  append(main, back(), h('h1', { text: 'Sauvegardes' }),
    h('p', { class: 'introduction', text: 'Une sauvegarde est un seul fichier chiffré qui contient tout ce que la box doit garder : comptes et clés d\'API, historiques, journal d\'audit, registre de la charte, documents de la commune, certificats. Elle permet de tout restaurer sur une box neuve. Les modèles d\'IA n\'y sont pas : ils se réinstallent.' }),
    warning, zones.status, zones.alert,
    h('h2', { text: 'Clé de sauvegarde' }), keyState, keyZone,
    h('h2', { text: 'Faire une sauvegarde' }),
    h('div', { class: 'actions' }, nowBtn, dlBtn), nowHint, dlHint, progressBox,
    h('h2', { text: 'Dernières sauvegardes' }), lastZone,
    h('h2', { text: 'Sauvegarde automatique' }), destZone, smbForm,
    h('h2', { text: 'Archives de cette box' }), archivesZone,
    h('h2', { text: 'Restaurer' }),
    h('p', { text: 'La restauration se fait box arrêtée, par le prestataire, avec la commande civia backup restore et la clé de sauvegarde : toute l\'archive est vérifiée avant d\'écrire quoi que ce soit. Ne restaurez que les sauvegardes de votre commune.' }));
  show();
  schedule();
}
