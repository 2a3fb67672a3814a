// A confirmation dialog built on the native <dialog> (modal, Escape closes it, focus kept
// inside), with the focus returned to the button that opened it.
import { h, newId, append } from './dom.js';

/** Resolves true when the user confirms. */
export function confirmDialog({ title, message, confirm = 'Confirmer', cancel = 'Annuler', danger = true }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const titleId = newId('dialogue-titre');
    const descId = newId('dialogue-texte');
    const cancelBtn = h('button', { type: 'button', class: 'bouton bouton-secondaire', value: 'annuler' }, cancel);
    const okBtn = h('button', { type: 'button', class: `bouton ${danger ? 'bouton-danger' : 'bouton-principal'}`, value: 'ok' }, confirm);
    const dlg = h('dialog', { class: 'dialogue', 'aria-labelledby': titleId, 'aria-describedby': descId },
      h('h2', { id: titleId, text: title }),
      h('p', { id: descId, text: message }),
      h('div', { class: 'actions' }, cancelBtn, okBtn));
    let result = false;
    cancelBtn.addEventListener('click', () => { result = false; dlg.close(); });
    okBtn.addEventListener('click', () => { result = true; dlg.close(); });
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      resolve(result);
    });
    append(document.body, dlg);
    dlg.showModal();
    cancelBtn.focus();
  });
}
