// check.mjs: static checks of the CertAgent PowerShell module, with no PowerShell at hand.
//
// It parses every .ps1/.psm1/.psd1 under scripts/ with tree-sitter-powershell (a real
// PowerShell grammar, as WebAssembly) and checks:
//
//   parse         no ERROR or MISSING node in any file
//   ps7           no PowerShell 7-only construct (?? ??= ?. ?: && || -Parallel, a clean
//                 block, 7-only cmdlet parameters): the module supports Windows PowerShell 5.1
//   manifest      the manifest's fixed fields (placeholder version, GUID, 5.1, editions,
//                 explicit empty cmdlet/alias/variable exports, format files that exist)
//   exports       FunctionsToExport (quoted names) equals the functions of Public/*.ps1
//   public-file   each Public/X.ps1 defines exactly the function X
//   help          every exported function has comment-based help: .SYNOPSIS, .DESCRIPTION,
//                 a .PARAMETER for each parameter (and none for missing ones), an .EXAMPLE
//   verb          every function's verb is approved (approved-verbs.txt, from Get-Verb)
//   cmdletbinding every exported function is an advanced function
//   route         every Invoke-CertAgentApi call has a literal -Method and -Path that exist
//                 in api/openapi.json; {placeholders} bound by -PathParameter; -Query and
//                 -Body keys (literal, or built in a variable of the same function) are the
//                 operation's query parameters and request-body properties
//   http          Invoke-RestMethod/Invoke-WebRequest only inside Invoke-CertAgentApi
//   coverage      every write route (POST/PUT/PATCH/DELETE) under /api/v1 is called by an
//                 exported command
//   shouldprocess a function that calls a write route declares SupportsShouldProcess and
//                 ConfirmImpact and calls $PSCmdlet.ShouldProcess
//   call          calls of the module's own functions (tests included) name parameters
//                 those functions declare; Verb-CertAgent* names that are not defined
//   variable      variables read in a function are parameters, assigned in it, automatic,
//                 or $script: variables the module assigns (typos show up here)
//   format        CertAgent.Format.ps1xml is well-formed, its script blocks parse, and every
//                 TypeName/PropertyName it names exists on the module's objects; each of the
//                 required PSTypeNames has a view
//
// Before the real files, a self-test runs the same checks on testdata/Broken, a module of
// deliberately broken files, and fails unless exactly the findings in testdata/Broken/
// expect.txt come out: the checker cannot silently pass everything.
//
// Usage: node --liftoff-only check.mjs [--root DIR] [--dist DIR] [--no-self-test]
//   --root  the repository (default: two folders up from this file)
//   --dist  also check a stamped copy of the module (make ps-module): same files, parses,
//           ModuleVersion a real version

import { Parser, Language } from 'web-tree-sitter';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));

// ---------------------------------------------------------------------------------------
// Parsing

let parser;

async function initParser() {
  await Parser.init();
  const lang = await Language.load(require.resolve('tree-sitter-powershell/tree-sitter-powershell.wasm'));
  parser = new Parser();
  parser.setLanguage(lang);
}

function parse(text) {
  // A UTF-8 BOM is fine for PowerShell; the grammar does not expect it.
  return parser.parse(text.replace(/^\uFEFF/, ''));
}

function* walk(node) {
  yield node;
  for (const child of node.children) yield* walk(child);
}

// walkNoErrors is walk that does not descend into ERROR nodes (one report per error).
function* walkNoErrors(node) {
  yield node;
  if (node.type === 'ERROR') return;
  for (const child of node.children) yield* walkNoErrors(child);
}

function hasErrors(tree) {
  return tree.rootNode.hasError;
}

function descendants(node, type) {
  const out = [];
  for (const n of walk(node)) if (n.type === type) out.push(n);
  return out;
}

// same reports whether two nodes are the same node (web-tree-sitter makes a new object for
// each access, so === does not tell).
function same(a, b) {
  return !!a && !!b && a.startIndex === b.startIndex && a.endIndex === b.endIndex && a.type === b.type;
}

function ancestor(node, type) {
  for (let n = node.parent; n; n = n.parent) if (n.type === type) return n;
  return null;
}

// Findings -------------------------------------------------------------------------------

class Findings {
  constructor(root) {
    this.root = root;
    this.items = [];
  }
  add(file, node, kind, msg) {
    const pos = node && node.startPosition ? node.startPosition : node || { row: 0, column: 0 };
    this.items.push({ file: path.relative(this.root, file), line: pos.row + 1, col: pos.column + 1, kind, msg });
  }
}

// Strings -------------------------------------------------------------------------------

// literalString returns the value of a string literal node (or of a node that wraps exactly
// one), or null when it is not a constant string (an expandable string with variables).
function literalString(node) {
  if (!node) return null;
  let n = node;
  while (n && n.type !== 'string_literal' && n.namedChildCount === 1) n = n.namedChildren[0];
  if (!n) return null;
  if (n.type === 'string_literal') n = n.namedChildren[0];
  if (!n) return null;
  switch (n.type) {
    case 'verbatim_string_characters':
      return n.text.slice(1, -1).replace(/''/g, "'");
    case 'expandable_string_literal':
      if (n.namedChildCount > 0) return null;
      return n.text.slice(1, -1).replace(/`(.)/g, '$1');
    case 'verbatim_here_string_characters':
      return n.text.replace(/^@'\r?\n/, '').replace(/\r?\n'@$/, '');
    case 'generic_token':
      return n.text;
  }
  return null;
}

// stringsIn returns every string literal inside node, or null if node holds anything that
// is not a constant (a variable, a sub-expression, a command).
function stringsIn(node) {
  const out = [];
  for (const n of walk(node)) {
    if (n.type === 'variable' || n.type === 'sub_expression' || n.type === 'command') return null;
    if (n.type === 'string_literal') {
      const v = literalString(n);
      if (v === null) return null;
      out.push(v);
    }
  }
  return out;
}

// Hash literals ----------------------------------------------------------------------------

function hashKeys(hashNode) {
  const keys = [];
  for (const entry of descendants(hashNode, 'hash_entry')) {
    if (!same(ancestor(entry, 'hash_literal_expression'), hashNode)) continue;
    const key = entry.namedChildren.find((c) => c.type === 'key_expression');
    if (!key) continue;
    const s = literalString(key);
    keys.push({ name: s !== null ? s : key.text, node: key, entry });
  }
  return keys;
}

function hashValue(hashNode, name) {
  for (const k of hashKeys(hashNode)) {
    if (k.name.toLowerCase() === name.toLowerCase()) {
      const v = k.entry.namedChildren.find((c) => c.type !== 'key_expression');
      return v || null;
    }
  }
  return null;
}

// unwrap descends through single-child wrapper nodes.
function unwrap(node) {
  let n = node;
  while (n && n.namedChildCount === 1 && !['variable', 'string_literal', 'hash_literal_expression', 'script_block_expression'].includes(n.type)) {
    n = n.namedChildren[0];
  }
  return n;
}

// Variables ------------------------------------------------------------------------------

// varName returns a variable node's name without $, @, braces or a scope prefix, and the
// scope ('' for none), lower-cased.
function varName(node) {
  let t = node.text.replace(/^[$@]/, '');
  if (t.startsWith('{') && t.endsWith('}')) t = t.slice(1, -1);
  const m = /^(global|local|script|private|using|env|variable|function):(.*)$/i.exec(t);
  if (m) return { scope: m[1].toLowerCase(), name: m[2].toLowerCase() };
  return { scope: '', name: t.toLowerCase() };
}

// Commands -------------------------------------------------------------------------------

// commandArgs reads a command node: its name, named parameters (name -> value node or null),
// positional values, and whether it splats.
function commandArgs(cmd) {
  const nameNode = cmd.namedChildren.find((c) => c.type === 'command_name');
  const elements = cmd.namedChildren.find((c) => c.type === 'command_elements');
  const named = new Map();
  const params = [];
  const positional = [];
  let splat = false;
  let pending = null;
  const take = (valueNode) => {
    const u = unwrap(valueNode);
    if (u && u.type === 'variable' && u.text.startsWith('@')) {
      splat = true;
      return;
    }
    if (pending) {
      named.set(pending.name.toLowerCase(), valueNode);
      pending = null;
    } else {
      positional.push(valueNode);
    }
  };
  if (elements) {
    for (const c of elements.namedChildren) {
      if (c.type === 'command_parameter') {
        const name = c.text.replace(/^-/, '').replace(/:$/, '');
        pending = { name, node: c };
        params.push({ name, node: c });
        if (!named.has(name.toLowerCase())) named.set(name.toLowerCase(), null);
        continue;
      }
      if (c.type === 'command_argument_sep') {
        for (const v of c.namedChildren) take(v);
        continue;
      }
      if (c.type === 'redirection' || c.type === 'file_redirection_operator') continue;
      take(c);
    }
  }
  return { name: nameNode ? nameNode.text : '', nameNode, named, params, positional, splat };
}

// Functions ------------------------------------------------------------------------------

function functionInfo(fn) {
  const nameNode = fn.namedChildren.find((c) => c.type === 'function_name');
  const name = nameNode ? nameNode.text : '';
  const body = fn.namedChildren.find((c) => c.type === 'script_block');
  let help = null;
  for (const c of fn.namedChildren) {
    if (c.type === 'comment' && c.text.startsWith('<#')) {
      help = c;
      break;
    }
  }
  if (!help) {
    // Help may also sit right before the function keyword.
    const prev = fn.previousNamedSibling || (fn.parent && fn.parent.previousNamedSibling);
    if (prev && prev.type === 'comment' && prev.text.startsWith('<#') && fn.startPosition.row - prev.endPosition.row <= 1) help = prev;
  }
  const paramBlock = body ? body.namedChildren.find((c) => c.type === 'param_block') : null;
  const params = [];
  let cmdletBinding = null;
  if (paramBlock) {
    for (const attr of paramBlock.namedChildren.filter((c) => c.type === 'attribute_list')) {
      for (const a of attr.namedChildren) {
        const an = a.namedChildren.find((c) => c.type === 'attribute_name');
        if (an && /^CmdletBinding$/i.test(an.text)) cmdletBinding = a;
      }
    }
    const list = paramBlock.namedChildren.find((c) => c.type === 'parameter_list');
    if (list) {
      for (const p of list.namedChildren.filter((c) => c.type === 'script_parameter')) {
        const v = p.namedChildren.find((c) => c.type === 'variable');
        if (v) params.push({ name: varName(v).name, display: v.text.slice(1), node: v, decl: p });
      }
    }
  }
  const attrArg = (attr, argName) => {
    if (!attr) return undefined;
    for (const arg of descendants(attr, 'attribute_argument')) {
      const sn = arg.namedChildren.find((c) => c.type === 'simple_name');
      if (sn && sn.text.toLowerCase() === argName.toLowerCase()) {
        const v = arg.namedChildren.find((c) => c !== sn);
        return v ? v.text : '$true';
      }
    }
    return undefined;
  };
  return { node: fn, name, nameNode, body, help, params, cmdletBinding, attrArg };
}

// ---------------------------------------------------------------------------------------
// PowerShell 7-only constructs

// Cmdlet parameters that exist only in PowerShell 6/7 (lower-case).
const ps7Params = {
  'convertfrom-json': ['ashashtable', 'depth', 'noenumerate', 'datekind'],
  'convertto-json': ['asarray', 'enumsasstrings', 'escapehandling'],
  'invoke-restmethod': ['skiphttperrorcheck', 'statuscodevariable', 'responseheadersvariable', 'authentication', 'token', 'noproxy', 'sslprotocol',
    'skipcertificatecheck', 'form', 'resume', 'maximumretrycount', 'retryintervalsec', 'skipheadervalidation', 'allowunencryptedauthentication',
    'httpversion', 'preserveauthorizationonredirect', 'connectiontimeoutseconds', 'operationtimeoutseconds', 'followrellink', 'maximumfollowrellink', 'custommethod'],
  'get-content': ['asbytestream'],
  'set-content': ['asbytestream'],
  'add-content': ['asbytestream'],
  'join-path': ['additionalchildpath'],
  'split-path': ['leafbase', 'extension'],
  'foreach-object': ['parallel', 'throttlelimit', 'timeoutseconds', 'asjob'],
  'get-date': ['asutc', 'unixtimeseconds'],
  'select-object': ['skipindex', 'skiplast'],
  'test-connection': ['tcpport', 'traceroute', 'mtusize', 'repeat'],
  'start-process': ['environment'],
  'where-object': [],
};
ps7Params['invoke-webrequest'] = ps7Params['invoke-restmethod'];
ps7Params['irm'] = ps7Params['invoke-restmethod'];
ps7Params['iwr'] = ps7Params['invoke-restmethod'];
ps7Params['foreach'] = ps7Params['foreach-object'];
ps7Params['%'] = ps7Params['foreach-object'];
// Commands that do not exist in Windows PowerShell 5.1.
const ps7Commands = new Set(['test-json', 'get-error', 'join-string', 'convertfrom-markdown', 'show-markdown', 'get-markdownoption',
  'set-markdownoption', 'remove-alias', 'get-uptime', 'remove-service', 'clear-recyclebin', 'convertto-csv -usequotes']);

function checkPs7(file, tree, findings) {
  const src = tree.rootNode.text;
  for (const n of walkNoErrors(tree.rootNode)) {
    if (n.type === 'pipeline_chain_tail') {
      findings.add(file, n, 'ps7', `pipeline chain operator ${n.text.trim().slice(0, 2)} is PowerShell 7 only: use if ($?) { ... } or try/catch`);
    } else if (n.type === 'ERROR') {
      // The ERROR node may hold only the "?"; what follows tells ?. from ?:.
      const t = n.text + src.slice(n.endIndex, n.endIndex + 2);
      let what = null;
      if (/\?\?=/.test(t)) what = '??= (null-coalescing assignment)';
      else if (/\?\?/.test(t)) what = '?? (null-coalescing)';
      else if (/\?\.|\?\[/.test(t)) what = '?. / ?[] (null-conditional member access)';
      else if (/^\s*\?\s*$/.test(t) || /\s\?\s/.test(` ${t} `)) what = '? : (ternary)';
      else if (/\bclean\b/i.test(t)) what = 'a clean block';
      if (what) findings.add(file, n, 'ps7', `${what} is PowerShell 7 only: Windows PowerShell 5.1 must run the module`);
    } else if (n.type === 'command') {
      const c = commandArgs(n);
      const name = c.name.toLowerCase();
      if (name === 'clean' && c.positional.length === 1 && unwrap(c.positional[0]).type === 'script_block_expression' && ancestor(n, 'function_statement')) {
        findings.add(file, n, 'ps7', 'a clean block is PowerShell 7 only');
      }
      if (ps7Commands.has(name)) findings.add(file, c.nameNode, 'ps7', `${c.name} does not exist in Windows PowerShell 5.1`);
      const only = ps7Params[name];
      if (only) {
        for (const p of c.params) {
          if (only.includes(p.name.toLowerCase())) findings.add(file, p.node, 'ps7', `${c.name} -${p.name} is PowerShell 7 only`);
        }
      }
    } else if (n.type === 'generic_token' || n.type === 'verbatim_string_characters') {
      if (/^'?utf8NoBOM'?$/i.test(n.text)) findings.add(file, n, 'ps7', 'the encoding utf8NoBOM is PowerShell 7 only: write bytes with [System.Text.UTF8Encoding]::new($false) semantics instead');
    }
  }
}

function checkParse(file, tree, findings) {
  let count = 0;
  for (const n of walkNoErrors(tree.rootNode)) {
    if (count >= 20) break;
    if (n.isMissing) {
      findings.add(file, n, 'parse', `missing ${n.type}`);
      count++;
    } else if (n.type === 'ERROR') {
      const snippet = n.text.split('\n')[0].slice(0, 40);
      findings.add(file, n, 'parse', `syntax error at ${JSON.stringify(snippet)}`);
      count++;
    }
  }
}

// ---------------------------------------------------------------------------------------
// OpenAPI

function loadOpenAPI(file) {
  const text = fs.readFileSync(file, 'utf8');
  const doc = JSON.parse(text);
  const lines = text.split('\n');
  const lineOf = (p) => {
    const i = lines.findIndex((l) => l.trim().startsWith(JSON.stringify(p) + ':'));
    return i < 0 ? 0 : i;
  };
  const resolve = (obj) => {
    let o = obj;
    for (let i = 0; o && o.$ref && i < 10; i++) {
      const parts = o.$ref.replace(/^#\//, '').split('/');
      o = parts.reduce((acc, k) => (acc ? acc[k] : undefined), doc);
    }
    return o;
  };
  const ops = new Map(); // "METHOD path" -> {query:Set, bodyProps:Set|null, bodyRequired, jsonBody}
  for (const [p, item] of Object.entries(doc.paths || {})) {
    for (const [m, op] of Object.entries(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(m)) continue;
      const params = [...(item.parameters || []), ...(op.parameters || [])].map(resolve).filter(Boolean);
      const query = new Set(params.filter((x) => x.in === 'query').map((x) => x.name));
      let bodyProps = null;
      let bodyRequired = [];
      const json = op.requestBody && op.requestBody.content && op.requestBody.content['application/json'];
      if (json) {
        const schema = resolve(json.schema) || {};
        bodyProps = new Set(Object.keys(schema.properties || {}));
        bodyRequired = schema.required || [];
      }
      ops.set(`${m.toUpperCase()} ${p}`, { method: m.toUpperCase(), path: p, query, bodyProps, bodyRequired, line: lineOf(p) });
    }
  }
  return { file, ops };
}

// ---------------------------------------------------------------------------------------
// The module

const automaticVars = new Set(['_', 'psitem', 'true', 'false', 'null', 'pscmdlet', 'psboundparameters', 'myinvocation', 'psscriptroot',
  'pscommandpath', 'args', 'input', 'error', 'lastexitcode', 'executioncontext', 'host', 'psversiontable', 'pwd', 'home', 'pid',
  'matches', 'this', 'sender', 'eventargs', 'event', 'psculture', 'psuiculture', 'shellid', 'pshome', 'psedition', 'nestedpromptlevel',
  'progresspreference', 'erroractionpreference', 'verbosepreference', 'debugpreference', 'warningpreference', 'informationpreference',
  'confirmpreference', 'whatifpreference', 'ofs', 'psdefaultparametervalues', 'foreach', 'switch', 'stacktrace', 'consolefilename',
  'testdrive', 'testregistry']);

const commonParams = ['verbose', 'debug', 'erroraction', 'warningaction', 'informationaction', 'errorvariable', 'warningvariable',
  'informationvariable', 'outvariable', 'outbuffer', 'pipelinevariable', 'progressaction'];

function readVerbs(file) {
  return new Set(fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
}

function listFiles(dir, exts) {
  const out = [];
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name === 'node_modules' || e.name === '.git') continue;
      out.push(...listFiles(p, exts));
    } else if (exts.some((x) => e.name.toLowerCase().endsWith(x))) {
      out.push(p);
    }
  }
  return out.sort();
}

function loadFile(file) {
  const text = fs.readFileSync(file, 'utf8');
  return { file, text, tree: parse(text) };
}

// checkModule runs every module check on the module in dir and adds to findings.
// opts: { openapi, verbs, requiredTypes, placeholderVersion (string or null: dist) }
function checkModule(dir, opts, findings) {
  const name = path.basename(dir);
  const manifestFile = path.join(dir, `${name}.psd1`);
  const files = listFiles(dir, ['.ps1', '.psm1', '.psd1']).map(loadFile);
  const byFile = new Map(files.map((f) => [f.file, f]));
  const publicDir = path.join(dir, 'Public');
  const privateDir = path.join(dir, 'Private');
  const testsDir = path.join(dir, 'Tests');
  const isIn = (f, d) => f.startsWith(d + path.sep);

  for (const f of files) {
    checkParse(f.file, f.tree, findings);
    checkPs7(f.file, f.tree, findings);
  }

  // Functions.
  const functions = new Map(); // lower name -> info (+file, public)
  const publicNames = new Set();
  for (const f of files) {
    if (isIn(f.file, testsDir)) continue;
    const fns = descendants(f.tree.rootNode, 'function_statement').map(functionInfo);
    for (const fn of fns) {
      fn.file = f.file;
      fn.public = isIn(f.file, publicDir);
      functions.set(fn.name.toLowerCase(), fn);
    }
    if (isIn(f.file, publicDir)) {
      const base = path.basename(f.file, '.ps1');
      const top = fns.filter((fn) => !ancestor(fn.node, 'function_statement'));
      if (top.length !== 1 || top[0].name !== base) {
        findings.add(f.file, top[0] ? top[0].nameNode : null, 'public-file', `Public/${base}.ps1 must define exactly one function, ${base} (found: ${top.map((x) => x.name).join(', ') || 'none'})`);
      }
      for (const fn of top) publicNames.add(fn.name);
    }
  }

  // Manifest.
  const manifest = byFile.get(manifestFile);
  if (!manifest) {
    findings.add(manifestFile, null, 'manifest', 'the module manifest is missing');
  } else {
    checkManifest(manifest, dir, publicNames, opts, findings);
  }

  // Verbs, help, CmdletBinding.
  for (const fn of functions.values()) {
    const m = /^([A-Za-z]+)-([A-Za-z0-9]+)$/.exec(fn.name);
    if (!m) {
      findings.add(fn.file, fn.nameNode, 'verb', `${fn.name}: a function name is Verb-Noun`);
    } else if (!opts.verbs.has(m[1])) {
      findings.add(fn.file, fn.nameNode, 'verb', `${fn.name}: ${m[1]} is not an approved verb (Get-Verb; see approved-verbs.txt)`);
    }
    if (!fn.public) continue;
    if (!fn.cmdletBinding) findings.add(fn.file, fn.nameNode, 'cmdletbinding', `${fn.name}: exported functions are advanced functions: add [CmdletBinding()]`);
    checkHelp(fn, findings);
  }

  // Calls: routes, HTTP, ShouldProcess, the module's own functions, and variables.
  const called = new Map(); // "METHOD path" -> [functions]
  for (const f of files) {
    const inTests = isIn(f.file, testsDir);
    for (const cmdNode of descendants(f.tree.rootNode, 'command')) {
      const c = commandArgs(cmdNode);
      const lower = c.name.toLowerCase();
      const fnNode = ancestor(cmdNode, 'function_statement');
      const fn = fnNode ? functions.get(functionInfo(fnNode).name.toLowerCase()) : null;
      if (!inTests && ['invoke-restmethod', 'invoke-webrequest', 'irm', 'iwr'].includes(lower) && (!fn || fn.name !== 'Invoke-CertAgentApi')) {
        findings.add(f.file, c.nameNode, 'http', `${c.name} outside Invoke-CertAgentApi: call the API through Invoke-CertAgentApi so that its routes are checked`);
      }
      if (!inTests && lower === 'invoke-certagentapi') {
        const route = checkApiCall(f.file, cmdNode, c, fn, opts.openapi, findings);
        if (route) {
          if (!called.has(route)) called.set(route, []);
          called.get(route).push(fn);
          if (fn && !route.startsWith('GET ')) checkShouldProcess(fn, route, findings);
        }
      }
      const target = functions.get(lower);
      if (target) {
        checkCallParams(f.file, c, target, findings);
      } else if (/^[A-Za-z]+-CertAgent/i.test(c.name) && !inTests) {
        findings.add(f.file, c.nameNode, 'call', `${c.name} is not a function of the module`);
      } else if (/^[A-Za-z]+-CertAgent/i.test(c.name) && inTests && !functions.has(lower)) {
        findings.add(f.file, c.nameNode, 'call', `${c.name} is not a function of the module`);
      }
    }
  }
  for (const [key, op] of opts.openapi.ops) {
    if (op.method === 'GET' || !op.path.startsWith('/api/v1/')) continue;
    const by = (called.get(key) || []).filter((fn) => fn && fn.public);
    if (by.length === 0) {
      findings.items.push({ file: path.relative(findings.root, opts.openapi.file), line: op.line + 1, col: 1, kind: 'coverage', msg: `${key}: no exported command calls this write route` });
    }
  }

  checkVariables(files.filter((f) => !isIn(f.file, testsDir)), findings);

  const formats = listFiles(dir, ['.format.ps1xml']);
  checkFormats(formats, files.filter((f) => !isIn(f.file, testsDir)), opts.requiredTypes, findings);
}

function checkManifest(manifest, dir, publicNames, opts, findings) {
  const hash = descendants(manifest.tree.rootNode, 'hash_literal_expression')[0];
  if (!hash) {
    findings.add(manifest.file, null, 'manifest', 'the manifest holds no hashtable');
    return;
  }
  const file = manifest.file;
  const get = (key) => hashValue(hash, key);
  const strings = (key) => {
    const v = get(key);
    if (!v) return null;
    return stringsIn(v);
  };
  const one = (key) => {
    const s = strings(key);
    return s && s.length === 1 ? s[0] : null;
  };
  const need = (key, ok, msg) => {
    if (!ok) findings.add(file, get(key) || hash, 'manifest', `${key}: ${msg}`);
  };
  const root = one('RootModule');
  need('RootModule', root && fs.existsSync(path.join(dir, root)), 'a .psm1 of the module');
  const version = one('ModuleVersion');
  if (opts.placeholderVersion !== null) {
    need('ModuleVersion', version === opts.placeholderVersion, `keep '${opts.placeholderVersion}' in the repository: make ps-module stamps the build's version into dist/`);
  } else {
    need('ModuleVersion', version && /^\d+\.\d+(\.\d+){0,2}$/.test(version) && version !== '0.0.0', `a stamped version (major.minor[.build[.revision]]), not ${version}`);
  }
  need('GUID', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(one('GUID') || ''), 'a GUID, the same forever');
  need('PowerShellVersion', one('PowerShellVersion') === '5.1', "'5.1': the module supports Windows PowerShell 5.1");
  const editions = strings('CompatiblePSEditions') || [];
  need('CompatiblePSEditions', editions.includes('Desktop') && editions.includes('Core'), "@('Desktop', 'Core')");
  for (const key of ['CmdletsToExport', 'VariablesToExport', 'AliasesToExport']) {
    const s = strings(key);
    need(key, s !== null && !s.some((x) => x.includes('*')), "list explicitly (@() for none), never '*'");
  }
  const formats = strings('FormatsToProcess');
  need('FormatsToProcess', formats && formats.length > 0 && formats.every((x) => fs.existsSync(path.join(dir, x))), 'the module\'s .Format.ps1xml files, which must exist');

  const exportsNode = get('FunctionsToExport');
  const exported = exportsNode ? stringsIn(exportsNode) : null;
  if (!exportsNode || exported === null) {
    findings.add(file, exportsNode || hash, 'exports', 'FunctionsToExport: list the exported functions as quoted strings');
    return;
  }
  // Every name quoted: a bareword list is valid PowerShell in some places but not here.
  for (const n of walk(exportsNode)) {
    if (n.type === 'generic_token' || n.type === 'command_name') findings.add(file, n, 'exports', `FunctionsToExport: quote ${n.text}`);
  }
  const set = new Set(exported);
  for (const e of exported) {
    if (e.includes('*')) findings.add(file, exportsNode, 'exports', `FunctionsToExport: no wildcards (${e})`);
    else if (!publicNames.has(e)) findings.add(file, exportsNode, 'exports', `FunctionsToExport lists ${e}, which is not a function of Public/`);
  }
  for (const p of publicNames) {
    if (!set.has(p)) findings.add(file, exportsNode, 'exports', `FunctionsToExport does not list ${p} (Public/${p}.ps1)`);
  }
}

function checkHelp(fn, findings) {
  if (!fn.help) {
    findings.add(fn.file, fn.nameNode, 'help', `${fn.name}: no comment-based help (<# .SYNOPSIS ... .EXAMPLE ... #>)`);
    return;
  }
  const text = fn.help.text;
  const sections = new Map();
  const re = /^\s*\.([A-Za-z]+)[ \t]*([^\n]*)\n([\s\S]*?)(?=^\s*\.[A-Za-z]+\b|#>)/gm;
  let m;
  while ((m = re.exec(text)) !== null) {
    const key = m[1].toUpperCase();
    if (!sections.has(key)) sections.set(key, []);
    sections.get(key).push({ arg: m[2].trim(), body: m[3].replace(/#>$/, '').trim() });
  }
  const want = (key, msg) => {
    const s = sections.get(key);
    if (!s || s.every((x) => x.body.length === 0)) findings.add(fn.file, fn.help, 'help', `${fn.name}: ${msg}`);
  };
  want('SYNOPSIS', 'help has no .SYNOPSIS');
  want('DESCRIPTION', 'help has no .DESCRIPTION');
  want('EXAMPLE', 'help has no .EXAMPLE');
  const documented = new Set((sections.get('PARAMETER') || []).map((x) => x.arg.toLowerCase()));
  for (const p of fn.params) {
    if (!documented.has(p.name)) findings.add(fn.file, p.node, 'help', `${fn.name}: help has no .PARAMETER ${p.display}`);
  }
  const declared = new Set(fn.params.map((p) => p.name));
  for (const d of documented) {
    if (!declared.has(d)) findings.add(fn.file, fn.help, 'help', `${fn.name}: help documents .PARAMETER ${d}, which the function does not have`);
  }
}

// keysOf returns the keys of a hashtable argument: a literal, or a variable of the same
// function assigned a literal and/or given keys by $var['key'] = ... / $var.key = ...
// Returns null when it cannot tell.
function keysOf(valueNode, fnNode) {
  const u = unwrap(valueNode);
  if (!u) return null;
  if (u.type === 'hash_literal_expression') return hashKeys(u).map((k) => k.name);
  if (u.type !== 'variable' || !fnNode) return null;
  const v = varName(u).name;
  const keys = [];
  let seen = false;
  for (const asg of descendants(fnNode, 'assignment_expression')) {
    const left = asg.namedChildren.find((c) => c.type === 'left_assignment_expression');
    const right = asg.namedChildren[asg.namedChildCount - 1];
    if (!left) continue;
    const target = unwrap(left);
    if (target && target.type === 'variable' && varName(target).name === v) {
      seen = true;
      const r = unwrap(right);
      if (r && r.type === 'hash_literal_expression') keys.push(...hashKeys(r).map((k) => k.name));
      else if (!(r && r.type === 'variable' && r.text === '$null')) return null;
    } else if (target && target.type === 'element_access') {
      const base = target.namedChildren[0];
      if (base && base.type === 'variable' && varName(base).name === v) {
        const s = literalString(target.namedChildren[1]);
        if (s === null) return null;
        keys.push(s);
      }
    } else if (target && target.type === 'member_access') {
      const base = target.namedChildren[0];
      if (base && base.type === 'variable' && varName(base).name === v) {
        const mn = target.namedChildren.find((c) => c.type === 'member_name');
        if (mn) keys.push(mn.text);
      }
    }
  }
  return seen ? keys : null;
}

function checkApiCall(file, cmdNode, c, fn, openapi, findings) {
  if (c.splat) {
    findings.add(file, c.nameNode, 'route', 'Invoke-CertAgentApi with splatting: pass -Method and -Path as literals so that the route can be checked');
    return null;
  }
  const methodNode = c.named.get('method');
  const pathNode = c.named.get('path');
  const method = methodNode === undefined ? 'GET' : literalString(methodNode);
  const p = pathNode ? literalString(pathNode) : null;
  if (method === null) {
    findings.add(file, methodNode || c.nameNode, 'route', '-Method must be a literal string');
    return null;
  }
  if (p === null) {
    findings.add(file, pathNode || c.nameNode, 'route', '-Path must be a literal string, written as in api/openapi.json ({id} placeholders, values in -PathParameter)');
    return null;
  }
  const key = `${method.toUpperCase()} ${p}`;
  const op = openapi.ops.get(key);
  if (!op) {
    const methods = [...openapi.ops.values()].filter((o) => o.path === p).map((o) => o.method);
    const why = methods.length ? `${p} takes only ${methods.join(', ')}` : `${p} is not a path of the API`;
    findings.add(file, pathNode, 'route', `${key} is not in api/openapi.json: ${why}`);
    return null;
  }
  const fnNode = fn ? fn.node : ancestor(cmdNode, 'function_statement');
  // Path parameters.
  const placeholders = [...p.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
  const ppNode = c.named.get('pathparameter');
  const bound = ppNode ? keysOf(ppNode, fnNode) : [];
  if (bound === null) {
    findings.add(file, ppNode, 'route', `${key}: -PathParameter must be a hashtable literal`);
  } else {
    for (const ph of placeholders) if (!bound.includes(ph)) findings.add(file, pathNode, 'route', `${key}: {${ph}} has no value in -PathParameter`);
    for (const b of bound) if (!placeholders.includes(b)) findings.add(file, ppNode, 'route', `${key}: -PathParameter ${b} is not a placeholder of the path`);
  }
  // Query parameters.
  const qNode = c.named.get('query');
  if (qNode) {
    const keys = keysOf(qNode, fnNode);
    if (keys === null) findings.add(file, qNode, 'route', `${key}: cannot tell the -Query keys: use a hashtable literal or a variable built in this function`);
    else for (const k of keys) if (!op.query.has(k)) findings.add(file, qNode, 'route', `${key}: query parameter ${k} is not in api/openapi.json (it has: ${[...op.query].join(', ') || 'none'})`);
  }
  // JSON body.
  const bNode = c.named.get('body');
  if (bNode) {
    if (!op.bodyProps) {
      findings.add(file, bNode, 'route', `${key} takes no JSON body in api/openapi.json`);
    } else {
      const keys = keysOf(bNode, fnNode);
      if (keys === null) findings.add(file, bNode, 'route', `${key}: cannot tell the -Body keys: use a hashtable literal or a variable built in this function`);
      else {
        for (const k of keys) if (!op.bodyProps.has(k)) findings.add(file, bNode, 'route', `${key}: body property ${k} is not in api/openapi.json (it has: ${[...op.bodyProps].join(', ')})`);
        for (const r of op.bodyRequired) if (!keys.includes(r)) findings.add(file, bNode, 'route', `${key}: body property ${r} is required`);
      }
    }
  }
  return key;
}

function checkShouldProcess(fn, route, findings) {
  if (fn.shouldProcessChecked) return;
  fn.shouldProcessChecked = true;
  const supports = fn.attrArg(fn.cmdletBinding, 'SupportsShouldProcess');
  if (!supports || !/^\$true$/i.test(supports)) {
    findings.add(fn.file, fn.nameNode, 'shouldprocess', `${fn.name} calls ${route}: declare [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = ...)]`);
    return;
  }
  if (fn.attrArg(fn.cmdletBinding, 'ConfirmImpact') === undefined) {
    findings.add(fn.file, fn.nameNode, 'shouldprocess', `${fn.name}: set ConfirmImpact (Low, Medium or High)`);
  }
  if (!/\$PSCmdlet\.ShouldProcess\(/i.test(fn.node.text)) {
    findings.add(fn.file, fn.nameNode, 'shouldprocess', `${fn.name} calls ${route} but never $PSCmdlet.ShouldProcess(...)`);
  }
}

function checkCallParams(file, c, target, findings) {
  const declared = target.params.map((p) => p.name);
  const supports = target.attrArg(target.cmdletBinding, 'SupportsShouldProcess');
  const allowed = [...declared];
  if (target.cmdletBinding) allowed.push(...commonParams);
  if (supports && /^\$true$/i.test(supports)) allowed.push('whatif', 'confirm');
  const aliases = [];
  for (const p of target.params) {
    for (const a of descendants(p.decl, 'attribute')) {
      const an = a.namedChildren.find((x) => x.type === 'attribute_name');
      if (an && /^Alias$/i.test(an.text)) aliases.push(...(stringsIn(a) || []).map((s) => s.toLowerCase()));
    }
  }
  for (const p of c.params) {
    const n = p.name.toLowerCase();
    if (allowed.includes(n) || aliases.includes(n)) continue;
    const prefix = allowed.filter((a) => a.startsWith(n));
    if (prefix.length === 1) continue;
    findings.add(file, p.node, 'call', `${c.name} has no parameter -${p.name}${prefix.length > 1 ? ' (ambiguous)' : ''}`);
  }
}

// checkVariables reports variables read in a function that are neither parameters, assigned
// in the function, automatic, nor $script: variables the module assigns somewhere.
function checkVariables(files, findings) {
  const scriptVars = new Set();
  const isAssignTarget = (v) => {
    // $x = ..., $x += ..., [type] $x = ..., foreach ($x in ...), param($x)
    const p = v.parent;
    if (!p) return false;
    if (p.type === 'foreach_statement') return true;
    if (p.type === 'script_parameter') return true;
    const left = ancestor(v, 'left_assignment_expression');
    if (left) {
      const t = unwrap(left);
      if (same(t, v)) return true;
      if (t && t.type === 'expression_with_unary_operator') {
        const cast = descendants(t, 'variable');
        if (cast.length === 1 && same(cast[0], v)) return true;
      }
    }
    return false;
  };
  for (const f of files) {
    for (const v of descendants(f.tree.rootNode, 'variable')) {
      const { scope, name } = varName(v);
      if (scope === 'script' && isAssignTarget(v)) scriptVars.add(name);
      if (scope === '' && isAssignTarget(v) && !ancestor(v, 'function_statement')) scriptVars.add(name);
    }
  }
  for (const f of files) {
    // A file that does not parse has its parse findings; its variables would be noise.
    if (hasErrors(f.tree)) continue;
    for (const fnNode of descendants(f.tree.rootNode, 'function_statement')) {
      const info = functionInfo(fnNode);
      const known = new Set(info.params.map((p) => p.name));
      for (const v of descendants(fnNode, 'variable')) {
        const { scope, name } = varName(v);
        if (scope === '' && isAssignTarget(v)) known.add(name);
      }
      // [ref] $x out-parameters and -Variable names are assigned too.
      for (const v of descendants(fnNode, 'variable')) {
        const { scope, name } = varName(v);
        if (v.text.startsWith('@')) {
          if (!known.has(name) && !automaticVars.has(name)) findings.add(f.file, v, 'variable', `@${name} is splatted but never assigned in ${info.name}`);
          continue;
        }
        if (scope === 'env' || scope === 'global' || scope === 'using' || scope === 'variable' || scope === 'function') continue;
        if (scope === 'script') {
          if (!scriptVars.has(name)) findings.add(f.file, v, 'variable', `$script:${name} is never assigned in the module`);
          continue;
        }
        if (known.has(name) || automaticVars.has(name) || scriptVars.has(name)) continue;
        findings.add(f.file, v, 'variable', `$${name} is read in ${info.name} but never assigned there (a typo?)`);
      }
    }
  }
}

// Format files ----------------------------------------------------------------------------

function xmlUnescape(s) {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

function checkXmlWellFormed(file, text, findings) {
  const stack = [];
  const re = /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<(\/?)([A-Za-z_][\w.:-]*)([^>]*?)(\/?)>/g;
  let m;
  const lineAt = (i) => text.slice(0, i).split('\n').length - 1;
  while ((m = re.exec(text)) !== null) {
    if (!m[2]) continue;
    if (m[4] === '/') continue;
    if (m[1] === '/') {
      const top = stack.pop();
      if (!top || top.name !== m[2]) {
        findings.add(file, { row: lineAt(m.index), column: 0 }, 'format', `</${m[2]}> closes ${top ? '<' + top.name + '>' : 'nothing'}`);
        return false;
      }
    } else {
      stack.push({ name: m[2], index: m.index });
    }
  }
  if (stack.length) {
    findings.add(file, { row: lineAt(stack[stack.length - 1].index), column: 0 }, 'format', `<${stack[stack.length - 1].name}> is never closed`);
    return false;
  }
  return true;
}

function checkFormats(formatFiles, moduleFiles, requiredTypes, findings) {
  // The module's object types: [pscustomobject]@{ PSTypeName = 'X'; ... } literals.
  const types = new Map(); // type -> Set(props)
  for (const f of moduleFiles) {
    for (const h of descendants(f.tree.rootNode, 'hash_literal_expression')) {
      const tn = hashValue(h, 'PSTypeName');
      if (!tn) continue;
      const t = stringsIn(tn);
      if (!t || t.length !== 1) continue;
      if (!types.has(t[0])) types.set(t[0], new Set());
      for (const k of hashKeys(h)) if (k.name !== 'PSTypeName') types.get(t[0]).add(k.name);
    }
  }
  const viewed = new Set();
  for (const file of formatFiles) {
    const text = fs.readFileSync(file, 'utf8');
    if (!checkXmlWellFormed(file, text, findings)) continue;
    const lineAt = (i) => text.slice(0, i).split('\n').length - 1;
    const viewRe = /<View>([\s\S]*?)<\/View>/g;
    let vm;
    while ((vm = viewRe.exec(text)) !== null) {
      const base = vm.index;
      const body = vm[1];
      const typeNames = [...body.matchAll(/<TypeName>\s*([^<]+?)\s*<\/TypeName>/g)].map((x) => x[1]);
      for (const t of typeNames) {
        viewed.add(t);
        if (!types.has(t)) findings.add(file, { row: lineAt(base), column: 0 }, 'format', `view for ${t}: the module makes no object of that PSTypeName`);
      }
      for (const pm of body.matchAll(/<PropertyName>\s*([^<]+?)\s*<\/PropertyName>/g)) {
        for (const t of typeNames) {
          const props = types.get(t);
          if (props && !props.has(pm[1])) findings.add(file, { row: lineAt(base + 6 + pm.index), column: 0 }, 'format', `${t} has no property ${pm[1]}`);
        }
      }
      for (const sm of body.matchAll(/<ScriptBlock>([\s\S]*?)<\/ScriptBlock>/g)) {
        const code = xmlUnescape(sm[1]);
        const tree = parse(code);
        const sub = new Findings(findings.root);
        checkParse(file, tree, sub);
        checkPs7(file, tree, sub);
        const startLine = lineAt(base + 6 + sm.index);
        for (const it of sub.items) findings.items.push({ ...it, line: startLine + it.line, kind: it.kind, msg: `in a ScriptBlock: ${it.msg}` });
        if (hasErrors(tree)) continue;
        // $_.Name at the top of the script block is the object; inside a nested script block
        // (ForEach-Object { $_ }) $_ is something else.
        for (const ma of descendants(tree.rootNode, 'member_access')) {
          const base = ma.namedChildren[0];
          const member = ma.namedChildren.find((c) => c.type === 'member_name');
          if (!base || base.type !== 'variable' || !['$_', '$psitem'].includes(base.text.toLowerCase()) || !member) continue;
          if (ancestor(ma, 'script_block_expression')) continue;
          for (const t of typeNames) {
            const props = types.get(t);
            if (props && !props.has(member.text)) {
              findings.add(file, { row: startLine + ma.startPosition.row - 1, column: 0 }, 'format', `ScriptBlock reads ${t}.${member.text}, which does not exist`);
            }
          }
        }
      }
    }
  }
  for (const t of requiredTypes) {
    if (!types.has(t)) findings.items.push({ file: '(module)', line: 0, col: 0, kind: 'format', msg: `the module makes no ${t} object` });
    else if (!viewed.has(t)) findings.items.push({ file: formatFiles[0] ? path.relative(findings.root, formatFiles[0]) : '(module)', line: 1, col: 1, kind: 'format', msg: `no view for ${t}` });
  }
}

// ---------------------------------------------------------------------------------------
// Dist copy

function checkDist(distDir, srcDir, opts, findings) {
  const rel = (d) => listFiles(d, ['']).map((f) => path.relative(d, f)).sort();
  const a = rel(srcDir).filter((f) => !f.startsWith('Tests' + path.sep));
  const b = rel(distDir);
  for (const f of a) if (!b.includes(f)) findings.add(path.join(distDir, f), null, 'dist', `missing from the stamped module: ${f}`);
  for (const f of b) if (!a.includes(f)) findings.add(path.join(distDir, f), null, 'dist', `not in the source module: ${f}`);
  const manifestFile = path.join(distDir, `${path.basename(distDir)}.psd1`);
  if (!fs.existsSync(manifestFile)) return;
  const m = loadFile(manifestFile);
  checkParse(m.file, m.tree, findings);
  const publicNames = new Set(listFiles(path.join(distDir, 'Public'), ['.ps1']).map((f) => path.basename(f, '.ps1')));
  checkManifest(m, distDir, publicNames, { ...opts, placeholderVersion: null }, findings);
}

// ---------------------------------------------------------------------------------------
// Self-test

function selfTest(root, opts) {
  const dir = path.join(here, 'testdata', 'Broken');
  const findings = new Findings(dir);
  const openapi = loadOpenAPI(path.join(dir, 'openapi.json'));
  checkModule(dir, { ...opts, openapi, requiredTypes: ['Broken.Thing'] }, findings);
  const keyOf = (it) => `${it.file === 'openapi.json' ? 'openapi' : it.file}:${it.line} ${it.kind}`;
  const got = findings.items.map((it) => ({ key: keyOf(it), it }));
  const want = fs.readFileSync(path.join(dir, 'expect.txt'), 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
  const missing = [];
  for (const w of want) {
    const i = got.findIndex((g) => g.key === w);
    if (i < 0) missing.push(w);
    else got.splice(i, 1);
  }
  if (missing.length || got.length) {
    console.error('pscheck self-test FAILED on testdata/Broken (expect.txt):');
    for (const m of missing) console.error(`  expected but not reported: ${m}`);
    for (const g of got) console.error(`  reported but not expected: ${g.key}  # ${g.it.msg}`);
    return false;
  }
  return want.length;
}

// ---------------------------------------------------------------------------------------
// Main

async function main() {
  const args = process.argv.slice(2);
  const opt = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const root = path.resolve(opt('--root') || path.join(here, '..', '..'));
  const dist = opt('--dist');
  const started = process.hrtime.bigint();
  await initParser();

  const openapi = loadOpenAPI(path.join(root, 'api', 'openapi.json'));
  const verbs = readVerbs(path.join(here, 'approved-verbs.txt'));
  const opts = {
    openapi,
    verbs,
    placeholderVersion: '0.0.0',
    requiredTypes: ['CertAgent.Status', 'CertAgent.Problem', 'CertAgent.Certificate', 'CertAgent.Rotation', 'CertAgent.Verdict',
      'CertAgent.AuditEntry', 'CertAgent.Credential'],
  };

  let ok = true;
  if (!args.includes('--no-self-test')) {
    const n = selfTest(root, opts);
    if (n === false) ok = false;
    else console.log(`pscheck: self-test ok (testdata/Broken: ${n} expected findings, all reported, nothing else)`);
  }

  const findings = new Findings(root);
  const moduleDir = path.join(root, 'scripts', 'CertAgent');
  checkModule(moduleDir, opts, findings);
  // Every other PowerShell file under scripts/ (not the checker's own fixtures).
  const others = listFiles(path.join(root, 'scripts'), ['.ps1', '.psm1', '.psd1'])
    .filter((f) => !f.startsWith(moduleDir + path.sep) && !f.startsWith(here + path.sep));
  for (const f of others.map(loadFile)) {
    checkParse(f.file, f.tree, findings);
    checkPs7(f.file, f.tree, findings);
  }
  if (dist) checkDist(path.resolve(dist), moduleDir, opts, findings);

  const items = findings.items.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col);
  for (const it of items) console.log(`${it.file}:${it.line}:${it.col}: ${it.kind}: ${it.msg}`);
  const nfiles = listFiles(moduleDir, ['.ps1', '.psm1', '.psd1']).length + others.length;
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (items.length) ok = false;
  console.log(`pscheck: ${nfiles} PowerShell files, ${openapi.ops.size} API operations: ${items.length} problem(s) in ${ms.toFixed(0)} ms`);
  process.exit(ok ? 0 : 1);
}

main().catch((err) => {
  console.error(`pscheck: ${err && err.stack ? err.stack : err}`);
  process.exit(2);
});
