// What the application knows about the signed-in user, shared by the views.

export const session = {
  /** The /auth/me answer, or null when signed out. */
  me: null,
  /** The charter when it still has to be accepted, else null. */
  charterPending: null,
};

/** A conversation handed from a task to the chat ("Continuer dans le chat"). */
export const handoff = { chat: null };

export const ROLE_LABELS = {
  agent: 'agent',
  admin: 'administrateur',
  dpo: 'délégué à la protection des données',
  integrator: 'prestataire intégrateur',
};

export const MODEL_ROLES = ['agent', 'admin'];
export const ALL_ROLES = ['agent', 'admin', 'dpo', 'integrator'];

export function role() { return session.me ? session.me.role : null; }
export function canUseModel() { return MODEL_ROLES.includes(role()); }
export function limits() { return (session.me && session.me.limits) || {}; }
export function userName() {
  return session.me && session.me.user ? session.me.user.name : '';
}
/** The home route of the signed-in user's role. */
export function homeRoute() { return canUseModel() ? '#/taches' : '#/admin'; }
