// Users and API keys (admin): keys created (shown once, with a copy
// button), listed with expiry, revoked; users with roles, created, password
// changes, deleted; the join token with the command line that starts a node.
import { html, useState, Table, Modal, Field, CopyButton, confirm, toast, toastError, usePoll, formatTime, formatAgo, StatusBadge, EmptyState, Spinner } from '../lib/ui.js';
import { api } from '../lib/api.js';
import { registerPage } from '../lib/shell.js';

function keyStatus(k) {
  return k.expired ? 'expired' : 'active';
}

function NewKeyForm({ onCreated }) {
  const [name, setName] = useState('');
  const [expires, setExpires] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      // the date input is a local date: the key expires at the end of that day, local time
      const body = { name: name.trim() };
      if (expires) body.expires_at = new Date(`${expires}T23:59:59`).toISOString().replace(/\.\d{3}Z$/, 'Z');
      const k = await api('POST', '/api/api-keys', { body });
      setName('');
      setExpires('');
      onCreated(k);
    } catch (err) {
      toastError(err, 'Creating the key failed');
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="toolbar" onSubmit=${submit} data-testid="key-form">
    <${Field} label="Key name" value=${name} onInput=${setName} required testid="key-name" placeholder="e.g. ci-bot" />
    <${Field} label="Expires (optional)" type="date" value=${expires} onInput=${setExpires} testid="key-expires" />
    <button type="submit" class="btn btn-primary" disabled=${busy || !name.trim()} data-testid="key-create">Create key</button>
  </form>`;
}

function ApiKeys() {
  const [keys, setKeys] = useState(null);
  const [created, setCreated] = useState(null);
  const reload = usePoll(async () => setKeys((await api('GET', '/api/api-keys')).api_keys), 15000);
  const revoke = async (k) => {
    if (!(await confirm(`Revoke the key "${k.name}" (${k.key_prefix}…)? Clients using it get 401 at once.`, { title: 'Revoke API key', okLabel: 'Revoke', danger: true }))) return;
    try {
      await api('DELETE', `/api/api-keys/${encodeURIComponent(k.id)}`);
      toast('Key revoked', 'success');
      reload();
    } catch (e) {
      toastError(e, 'Revoking failed');
    }
  };
  const example = created ? `curl ${location.origin}/v1/models -H "Authorization: Bearer ${created.key}"` : '';
  return html`<section class="section" data-testid="keys-section">
    <h2>API keys</h2>
    <p class="muted">Clients call <code>${location.origin}/v1/…</code> with <code>Authorization: Bearer sk_…</code>.</p>
    <${NewKeyForm} onCreated=${(k) => { setCreated(k); reload(); }} />
    ${!keys ? html`<${Spinner} />` : html`<${Table} testid="keys-table" caption="API keys" rows=${keys} rowKey=${(k) => k.id} filter="Filter keys…"
      empty=${html`<${EmptyState} title="No API keys yet.">Create one above: it is shown once, then only its prefix.<//>`}
      columns=${[
        { key: 'name', label: 'Name' },
        { key: 'key_prefix', label: 'Key', render: (k) => html`<code>${k.key_prefix}…</code>` },
        { key: 'status', label: 'Status', value: keyStatus, render: (k) => html`<${StatusBadge} status=${keyStatus(k)} />` },
        { key: 'created_at', label: 'Created', render: (k) => formatTime(k.created_at) },
        { key: 'expires_at', label: 'Expires', render: (k) => (k.expires_at ? formatTime(k.expires_at) : 'never') },
        { key: 'last_used_at', label: 'Last used', render: (k) => (k.last_used_at ? formatAgo(k.last_used_at) : 'never') },
        { key: 'created_by', label: 'By' },
        { key: 'actions', label: 'Actions', sortable: false, render: (k) => html`<button type="button" class="btn btn-small btn-danger" onClick=${() => revoke(k)} data-testid="key-revoke">Revoke</button>` },
      ]} />`}
    ${created && html`<${Modal} title="API key created" onClose=${() => setCreated(null)}
        footer=${html`<button type="button" class="btn btn-primary" onClick=${() => setCreated(null)} data-testid="key-done">I have stored it</button>`}>
      <p>Copy the key for <strong>${created.name}</strong> now: it is shown <strong>only once</strong>.</p>
      <div class="secret-box"><code data-testid="new-key">${created.key}</code><${CopyButton} text=${created.key} testid="copy-key" /></div>
      <p class="hint">Try it:</p>
      <div class="secret-box"><code>${example}</code><${CopyButton} text=${example} /></div>
    <//>`}
  </section>`;
}

function PasswordModal({ user, onClose }) {
  const [pw, setPw] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      await api('PUT', `/api/users/${encodeURIComponent(user.id)}`, { body: { password: pw } });
      toast(`Password of ${user.username} changed`, 'success');
      onClose();
    } catch (err) {
      toastError(err, 'Changing the password failed');
      setBusy(false);
    }
  };
  return html`<${Modal} title=${`New password for ${user.username}`} onClose=${onClose}>
    <form onSubmit=${submit}>
      <${Field} label="New password" type="password" value=${pw} onInput=${setPw} required autocomplete="new-password" testid="user-new-password" autofocus />
      <div class="btn-row"><button type="submit" class="btn btn-primary" disabled=${busy || !pw}>Change password</button>
        <button type="button" class="btn" onClick=${onClose}>Cancel</button></div>
    </form>
  <//>`;
}

function NewUserForm({ onCreated }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState('viewer');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      await api('POST', '/api/users', { body: { username: username.trim(), password, role } });
      toast(`User ${username.trim()} created`, 'success');
      setUsername('');
      setPassword('');
      onCreated();
    } catch (err) {
      toastError(err, 'Creating the user failed');
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="toolbar" onSubmit=${submit} data-testid="user-form">
    <${Field} label="Username" value=${username} onInput=${setUsername} required autocomplete="off" testid="user-name" />
    <${Field} label="Password" type="password" value=${password} onInput=${setPassword} required autocomplete="new-password" testid="user-password" />
    <${Field} label="Role" type="select" value=${role} onInput=${setRole} options=${[{ value: 'viewer', label: 'viewer (read-only)' }, { value: 'admin', label: 'admin' }]} testid="user-role" />
    <button type="submit" class="btn btn-primary" disabled=${busy || !username.trim() || !password} data-testid="user-create">Create user</button>
  </form>`;
}

function Users({ session }) {
  const [users, setUsers] = useState(null);
  const [pwFor, setPwFor] = useState(null);
  const reload = usePoll(async () => setUsers((await api('GET', '/api/users')).users), 30000);
  const me = session.user.username;
  const setRole = async (u, role) => {
    try {
      await api('PUT', `/api/users/${encodeURIComponent(u.id)}`, { body: { role } });
      toast(`${u.username} is now ${role}`, 'success');
    } catch (e) {
      toastError(e, 'Changing the role failed');
    }
    reload();
  };
  const del = async (u) => {
    if (!(await confirm(`Delete the user ${u.username}? Their sessions end.`, { title: 'Delete user', okLabel: 'Delete', danger: true }))) return;
    try {
      await api('DELETE', `/api/users/${encodeURIComponent(u.id)}`);
      toast(`User ${u.username} deleted`, 'success');
      reload();
    } catch (e) {
      toastError(e, 'Deleting the user failed');
    }
  };
  return html`<section class="section" data-testid="users-section">
    <h2>Users</h2>
    <p class="muted">Admins change things; viewers read the dashboard.</p>
    <${NewUserForm} onCreated=${reload} />
    ${!users ? html`<${Spinner} />` : html`<${Table} testid="users-table" caption="Users" rows=${users} rowKey=${(u) => u.id}
      columns=${[
        { key: 'username', label: 'Username', render: (u) => html`${u.username}${u.username === me ? html` <span class="muted">(you)</span>` : ''}` },
        { key: 'role', label: 'Role', render: (u) => html`<label class="sr-only" for=${`role-${u.id}`}>Role of ${u.username}</label>
          <select id=${`role-${u.id}`} class="input" value=${u.role} onChange=${(e) => setRole(u, e.target.value)}>
            <option value="admin">admin</option><option value="viewer">viewer</option></select>` },
        { key: 'created_at', label: 'Created', render: (u) => formatTime(u.created_at) },
        { key: 'actions', label: 'Actions', sortable: false, render: (u) => html`<div class="btn-row">
          <button type="button" class="btn btn-small" onClick=${() => setPwFor(u)}>Change password</button>
          <button type="button" class="btn btn-small btn-danger" disabled=${u.username === me} title=${u.username === me ? 'You cannot delete yourself' : undefined} onClick=${() => del(u)}>Delete</button></div>` },
      ]} />`}
    ${pwFor && html`<${PasswordModal} user=${pwFor} onClose=${() => setPwFor(null)} />`}
  </section>`;
}

function JoinToken() {
  const [jt, setJt] = useState(null);
  const [show, setShow] = useState(false);
  usePoll(async () => setJt(await api('GET', '/api/auth/join-token')), 0);
  if (!jt) return html`<section class="section"><h2>Adding nodes</h2><${Spinner} /></section>`;
  const cmd = `LLM_ROUTER_URL=${location.origin} LLM_ROUTER_JOIN_TOKEN=${jt.join_token} LLM_NODE_MODELS_DIR=~/models llm-node`;
  const masked = `${jt.join_token.slice(0, 4)}${'•'.repeat(12)}`;
  return html`<section class="section panel" data-testid="join-section">
    <h2>Adding nodes</h2>
    ${jt.open_registration && html`<p class="form-note">Registration is open: nodes can register without the token.</p>`}
    <p>Nodes present the join token (header <code>${jt.header}</code>, variable <code>${jt.env}</code>) when they register. Start a node with:</p>
    <div class="secret-box"><code data-testid="join-command">${show ? cmd : cmd.replace(jt.join_token, masked)}</code>
      <button type="button" class="btn btn-small" onClick=${() => setShow(!show)} aria-pressed=${show} data-testid="join-show">${show ? 'Hide' : 'Show'}</button>
      <${CopyButton} text=${cmd} testid="join-copy" /></div>
    <p class="hint">Join token: <code data-testid="join-token">${show ? jt.join_token : masked}</code> <${CopyButton} text=${jt.join_token} label="Copy token" /></p>
  </section>`;
}

function UsersPage({ session }) {
  return html`<div class="page" data-testid="page-users">
    <div class="page-head"><h1>Users and API keys</h1></div>
    <${ApiKeys} />
    <${Users} session=${session} />
    <${JoinToken} />
  </div>`;
}

registerPage('/users', { title: 'Users and keys', component: UsersPage, admin: true });
