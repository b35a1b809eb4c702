// Getting a token: from the tenant's tokenUrl (GET with the page's cookies: {"token": ...}
// or the JWT as text) or from the caller's tokenProvider.

export type TokenSource = () => Promise<string>;

export function tokenSource(tokenUrl?: string, provider?: () => Promise<string>): TokenSource {
  if (provider) {
    return async () => {
      const t = await provider();
      if (typeof t !== 'string' || !t) throw new Error('tokenProvider returned no token');
      return t;
    };
  }
  if (!tokenUrl) throw new Error('chat-sdk: tokenUrl or tokenProvider is required');
  return async () => {
    const res = await fetch(tokenUrl, { credentials: 'include', cache: 'no-store' });
    if (!res.ok) throw new Error(`tokenUrl answered ${res.status}`);
    const body = (await res.text()).trim();
    let token = body;
    if (body.startsWith('{')) token = JSON.parse(body).token;
    if (typeof token !== 'string' || !token) throw new Error('tokenUrl gave no token');
    return token;
  };
}

/** The exp claim of a JWT (seconds since the epoch), undefined if it cannot be read. The
 *  signature is not checked: the gateway does that; this only schedules the refresh. */
/** The payload of a JWT (not verified: the gateway does that), or undefined. */
function payload(jwt: string): Record<string, unknown> | undefined {
  try {
    const b64 = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const p = JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
    return p && typeof p === 'object' ? p : undefined;
  } catch {
    return undefined;
  }
}

export function tokenExp(jwt: string): number | undefined {
  const exp = payload(jwt)?.exp;
  return typeof exp === 'number' ? exp : undefined;
}

/** The tenant a token is for (its `tid` claim), or undefined. */
export function tokenTenant(jwt: string): string | undefined {
  const tid = payload(jwt)?.tid;
  return typeof tid === 'string' && tid !== '' ? tid : undefined;
}

/** The gateway URL with `?tenant=<tenant>` (the gateway then checks the page's Origin against
 *  the tenant's allowed origins at the upgrade, before any frame). */
export function gatewayUrl(url: string, tenant: string | undefined): string {
  if (!tenant) return url;
  return url + (url.includes('?') ? '&' : '?') + 'tenant=' + encodeURIComponent(tenant);
}
