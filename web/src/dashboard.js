// The dashboard's entry: every page module registers itself with the shell,
// then the shell mounts the app.
import { mount } from './lib/shell.js';
import './pages/login.js';
import './pages/overview.js';
import './pages/nodes.js';
import './pages/models.js';
import './pages/history.js';
import './pages/logs.js';
import './pages/users.js';

mount(document.getElementById('app'));
