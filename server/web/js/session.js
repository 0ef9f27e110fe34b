// Who is logged in. The token is kept in localStorage, not sessionStorage: a driver's request
// outlives a closed tab (the car is still in line), and reopening the app must find the
// request again without a new login. Logout and an expired or refused token remove it.
// The driver app and the operator dashboard keep theirs apart ("driver", "admin"): one
// browser may hold both.

const key = (kind) => `cs.session.${kind}`;

function decode(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

export function saveToken(kind, token) {
  const claims = decode(token);
  if (!claims) return null;
  const session = { token, name: claims.name, role: claims.role, exp: claims.exp };
  localStorage.setItem(key(kind), JSON.stringify(session));
  return session;
}

/** The kept session, or null; an expired one is dropped and its reason returned. */
export function loadSession(kind) {
  let session = null;
  try {
    session = JSON.parse(localStorage.getItem(key(kind)) || "null");
  } catch {
    session = null;
  }
  if (!session || typeof session.token !== "string") return { session: null, reason: null };
  if (typeof session.exp === "number" && Date.now() / 1000 >= session.exp) {
    clearSession(kind);
    return { session: null, reason: "token_expired" };
  }
  return { session, reason: null };
}

export function clearSession(kind) {
  localStorage.removeItem(key(kind));
}
