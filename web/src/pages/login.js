// Sign-in: posts /api/auth/login; the token goes to localStorage (a reload
// stays signed in). Shows why we are here (expired session, signed out).
import { html, useState, useEffect, useRef } from '../lib/ui.js';
import { login, takeLoginMessage } from '../lib/api.js';
import { registerPage, navigate, takeNextRoute } from '../lib/shell.js';

function Login() {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(null);
  const [note, setNote] = useState(null);
  const [busy, setBusy] = useState(false);
  const userRef = useRef(null);
  useEffect(() => {
    setNote(takeLoginMessage());
    if (userRef.current) userRef.current.focus();
  }, []);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(username.trim(), password);
      navigate(takeNextRoute());
    } catch (err) {
      setError(err.status === 401 ? 'Wrong username or password.' : err.message);
      setBusy(false);
    }
  };
  return html`<div class="login-wrap">
    <form class="panel login-box" onSubmit=${submit} data-testid="login-form" aria-labelledby="login-title">
      <h1 id="login-title">Sign in to llm-router</h1>
      ${note && html`<div class="form-note" role="status" data-testid="login-note">${note}</div>`}
      ${error && html`<div class="form-error" role="alert" data-testid="login-error">${error}</div>`}
      <div class="field">
        <label for="login-user">Username</label>
        <input id="login-user" ref=${userRef} class="input" name="username" autocomplete="username" required
          value=${username} onInput=${(e) => setUsername(e.target.value)} />
      </div>
      <div class="field">
        <label for="login-pass">Password</label>
        <input id="login-pass" class="input" name="password" type="password" autocomplete="current-password" required
          value=${password} onInput=${(e) => setPassword(e.target.value)} />
      </div>
      <button type="submit" class="btn btn-primary" disabled=${busy} data-testid="login-submit">${busy ? 'Signing in…' : 'Sign in'}</button>
      <p class="hint">The first admin's password is set by <code>LLM_ROUTER_ADMIN_PASSWORD</code>, or generated at first start (the router prints where it is stored).</p>
    </form>
  </div>`;
}

registerPage('/login', { title: 'Sign in', component: Login, nav: false });
