// The station's HTTP API. The token travels as a bearer header, never in a URL the browser
// keeps in its history. A refusal is an ApiError with the station's stable `error` key.

export class ApiError extends Error {
  constructor(status, error, msg) {
    super(msg || error);
    this.status = status;
    this.error = error;
    this.msg = msg;
  }
}

export async function api(method, path, { params = {}, token = null, raw = false } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let url = path;
  let body;
  const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  if (method === "GET") {
    if (entries.length) url += `?${new URLSearchParams(entries)}`;
  } else {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(Object.fromEntries(entries));
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body, cache: "no-store" });
  } catch {
    throw new ApiError(0, "network", "");
  }
  if (raw && response.ok) return response;
  let data = null;
  try {
    data = await response.json();
  } catch {
    throw new ApiError(response.status, "bad_reply", "");
  }
  if (!response.ok || (data && data.code === -1)) {
    throw new ApiError(response.status, data?.error || "unknown", data?.msg || "");
  }
  return data;
}

/** The WebSocket URL of a path on this station (wss when the page came over https). */
export function socketUrl(path, params) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}?${new URLSearchParams(params)}`;
}
