// Single sign-on through an organisation's identity provider. An integrator's sign-in
// redirects to /console/#idp_token={jwt}&org={organisation id}; the fragment never reaches
// servers or logs. The console exchanges the token at POST /v1/auth/idp for its own console
// token, removes the fragment from the address bar and history at once, and signs in.

/**
 * If the URL fragment carries an identity provider's token, exchange it and store the console
 * credentials under storageKey. Resolves to an error message for the sign-in form, or ''.
 */
export async function signInFromFragment(storageKey) {
  const params = new URLSearchParams(window.location.hash.replace(/^#/, ''));
  const token = params.get('idp_token');
  if (!token) return '';
  const org = params.get('org') ?? '';
  history.replaceState(null, '', window.location.pathname + window.location.search);
  if (!org) return 'The sign-in link names no organisation.';
  let res;
  try {
    res = await fetch('/v1/auth/idp', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, application/problem+json' },
      body: JSON.stringify({ organization_id: org, token }),
      credentials: 'omit',
    });
  } catch {
    return 'The sign-in could not reach the server; try again.';
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok || typeof body?.token !== 'string') {
    return `Single sign-on failed: ${body?.detail || body?.title || `error ${res.status}`}`;
  }
  sessionStorage.setItem(storageKey, JSON.stringify({ token: body.token, expires_at: body.expires_at ?? '' }));
  return '';
}

// ---------------------------------------------------------------- admins' settings

const $ = (id) => document.getElementById(id);
let ssoBound = false;

/**
 * Show the organisation's single sign-on settings to administrators (others get 403 and see
 * nothing). api is the console's authenticated fetch.
 */
export async function loadSSOSettings({ api }) {
  const panel = $('sso-panel');
  if (!panel) return;
  let current = null;
  try {
    current = await api('GET', '/v1/organization/identity-provider');
  } catch (err) {
    if (err.status !== 404) {
      panel.hidden = true;
      return;
    }
  }
  try {
    const org = await api('GET', '/v1/organization');
    $('sso-org').textContent = org?.id ?? '';
  } catch {
    $('sso-org').textContent = '';
  }
  fill(current);
  panel.hidden = false;
  if (ssoBound) return;
  ssoBound = true;
  $('sso-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = {
      jwks_url: $('sso-jwks-url').value.trim(),
      issuer: $('sso-issuer').value.trim(),
      audience: $('sso-audience').value.trim(),
      email_claim: $('sso-email-claim').value.trim(),
    };
    try {
      fill(await api('PUT', '/v1/organization/identity-provider', body));
      status('Saved: specialists can sign in through this identity provider.');
    } catch (err) {
      status(`Not saved: ${err.message}`);
    }
  });
  $('sso-remove').addEventListener('click', async () => {
    try {
      await api('DELETE', '/v1/organization/identity-provider');
      fill(null);
      status('Removed: only passwords sign in now.');
    } catch (err) {
      status(err.status === 404 ? 'There was no identity provider.' : `Not removed: ${err.message}`);
    }
  });
}

function fill(p) {
  $('sso-jwks-url').value = p?.jwks_url ?? '';
  $('sso-issuer').value = p?.issuer ?? '';
  $('sso-audience').value = p?.audience ?? '';
  $('sso-email-claim').value = p?.email_claim ?? '';
  $('sso-remove').hidden = !p;
}

function status(text) {
  $('sso-status').textContent = text;
}
