// The running demo in a real browser: every page, in Chinese and in English, has content where
// the demo has data, and the Chinese pages carry no English sentences.
// Run by tests/integration/browser.rs (`the_demo_in_chromium_every_page_in_both_languages`), which starts `cloudgov demo` and passes:
//   CLOUDGOV_URL, STAFF_USER, STAFF_PASSWORD, DEPT_USER, DEPT_PASSWORD, NOTICE (a notice with a
//   long timeline), CONTESTED_NOTICE, REVIEW_YEAR, SCREENSHOT_DIR, CHROMIUM.
// Prints one JSON line of what it saw; exits non-zero on the first failed check.
import { mkdirSync } from 'node:fs';
import { env, check, run, signIn as signInAt } from './browser.mjs';

const base = env('CLOUDGOV_URL');
const shots = env('SCREENSHOT_DIR');
mkdirSync(shots, { recursive: true });
const year = env('REVIEW_YEAR');
const seen = { pages: {} };

// A "word" is a token of Latin letters only (trailing punctuation allowed). Identifiers mix in
// digits, hyphens, underscores, dots or colons (his-db-01, p95, not_filed, 10.0.0.1, MACs), and
// units and codes stand alone (vCPU, GiB, <= 25), so three words in a row within one line of
// text (table cells are separated by tabs) are an English phrase.
const WORD = /^[(\["'“‘]?[A-Za-z]+[)\]"'”’,.;:!?]*$/;

function englishRuns(text) {
  const found = [];
  for (const line of text.split(/[\n\t]+/)) {
    let run = [];
    const flush = () => {
      if (run.length >= 3) found.push({ words: run.join(' '), line: line.trim() });
      run = [];
    };
    for (const token of line.trim().split(/\s+/)) {
      if (WORD.test(token)) run.push(token);
      else flush();
    }
    flush();
  }
  return found;
}

// The heuristic itself: it must catch prose and let identifiers through.
{
  check(englishRuns('10 working days after 2025-09-26: due 2025-10-16').length === 1, 'heuristic catches English prose');
  check(englishRuns('done on 2025-10-10 (confirmed)').length === 0, 'two words are not a sentence');
  check(englishRuns('his-db-01\tp95 <= 25\t16 vCPU\t64 GiB\t52:54:00:10:01:11\t10.10.1.11').length === 0, 'identifiers pass');
  check(englishRuns('no agent report since deployment').length === 1, 'alert prose is caught');
}

const signIn = (browser, user, password) => signInAt(browser, base, user, password);

const withLang = (path, lang) => `${path}${path.includes('?') ? '&' : '?'}lang=${lang}`;

// Each page with the tables that must have rows (not the empty "无"/"None" state), and how many.
function staffPages() {
  return [
    { name: 'overview', path: '/', shotEn: true, need: [['[data-testid=departments] tr[data-testid^=department-row-]', 3], ['[data-testid=candidates] tr[data-testid^=candidate-]', 3]] },
    { name: 'department', path: '/departments/health', need: [['[data-testid=projects] tr[data-testid^=project-row-]', 2], ['[data-testid=vm-table] tr[data-testid^=vm-row-]', 5]] },
    { name: 'project', path: '/projects/his', need: [['[data-testid=vm-table] tr[data-testid^=vm-row-]', 3], ['[data-testid=candidates] tr[data-testid^=candidate-]', 1]] },
    {
      name: 'vm', path: '/vms/his-app-02?days=365',
      need: [['[data-testid=findings] tr[data-testid^=finding-]', 3], ['[data-testid=vm-notices] tr[data-testid^=notice-row-]', 2],
        ['[data-testid=vm-deadlines] tr[data-testid^=deadline-row-]', 2], ['[data-testid=allocations] tbody tr', 1], ['svg.chart', 3]],
    },
    { name: 'vm-not-filed', path: '/vms/video-ingest-01', shot: false, need: [['tr[data-testid^=deadline-row-][data-kind=filing]', 1], ['[data-testid=findings] tr[data-testid^=finding-]', 3]] },
    { name: 'notices', path: '/notices', need: [['[data-testid=notices] tr[data-testid^=notice-row-]', 10]] },
    { name: 'notice', path: `/notices/${env('NOTICE')}`, shotEn: true, need: [['[data-testid=timeline] li', 5], ['[data-testid=timeline] li[data-testid=timeline-event_done]', 1]] },
    { name: 'notice-contested', path: `/notices/${env('CONTESTED_NOTICE')}`, need: [['[data-testid=timeline] li[data-testid=timeline-contest]', 1]] },
    { name: 'requests', path: '/requests', need: [['[data-testid=requests] tr[data-testid^=request-row-]', 1]] },
    { name: 'request', path: '/requests/1', shotEn: true, need: [['[data-testid=request-vms] tr[data-testid^=request-vm-]', 2], ['[data-testid=request-evidence] tr[data-testid^=evidence-]', 3], ['[data-testid=reasons-his-app-03] li', 3]] },
    { name: 'unused', path: '/unused', shotEn: true, need: [['[data-testid=unused-systems] tr[data-testid^=unused-row-]', 1]] },
    { name: 'network', path: '/network', shotEn: true, need: [['[data-testid=network-findings] tr[data-testid^=network-finding-]', 6], ['[data-testid=ip-registry] tr[data-testid^=registry-row-]', 10]] },
    { name: 'reviews', path: '/reviews', need: [[`[data-testid=review-row-${year}-his]`, 1], ['tr[data-testid^=review-row-]', 4]] },
    { name: 'audit', path: '/audit', need: [['[data-testid=audit] tr[data-testid=audit-row]', 3]] },
  ];
}

// Visits one page in one language: 200, the language, the tables filled, and (Chinese) no
// English sentences in what a reader sees.
async function visit(page, p, lang) {
  const resp = await page.goto(`${base}${withLang(p.path, lang)}`);
  check(resp.status() === 200, `${p.name} (${lang}) is 200, not ${resp.status()}`);
  check(await page.locator(lang === 'zh' ? 'html[lang^=zh]' : 'html[lang=en]').count() === 1, `${p.name} is in ${lang}`);
  const counts = {};
  for (const [selector, min] of p.need) {
    const n = await page.locator(selector).count();
    counts[selector] = n;
    check(n >= min, `${p.name} (${lang}): ${selector} has ${n} rows, expected at least ${min}`);
  }
  // No key table shows its empty state.
  const keyTables = p.need.map(([s]) => s.split(' ')[0]).filter((s) => s.startsWith('[data-testid='));
  for (const table of keyTables) {
    const none = await page.locator(`table${table} td.muted[colspan]`).count();
    check(none === 0, `${p.name} (${lang}): ${table} shows its empty state`);
  }
  const text = await page.evaluate(() => document.body.innerText);
  check(text.trim().length > 200, `${p.name} (${lang}) has content`);
  if (lang === 'zh') {
    const english = englishRuns(text);
    check(english.length === 0, `${p.name} (zh) carries English sentences:\n${english.map((e) => `  "${e.words}" in: ${e.line}`).join('\n')}`);
  }
  seen.pages[`${p.name}-${lang}`] = counts;
  return text;
}

await run(seen, async (browser) => {
  {
    const { context, page } = await signIn(browser, env('STAFF_USER'), env('STAFF_PASSWORD'));
    for (const p of staffPages()) {
      for (const lang of ['zh', 'en']) {
        await visit(page, p, lang);
        // The README's screenshots: every page in Chinese, a few in English too.
        if (p.shot !== false && (lang === 'zh' || p.shotEn)) {
          await page.screenshot({ path: `${shots}/${p.name}${lang === 'en' ? '-en' : ''}.png`, fullPage: true });
        }
      }
    }
    // Every art. 14 finding kind is on the network page, and every verdict on the reviews page.
    await page.goto(`${base}/network`);
    const kinds = await page.locator('[data-testid=network-findings] tr[data-kind]').evaluateAll((rows) => rows.map((r) => r.dataset.kind));
    for (const kind of ['unregistered_ip', 'mac_mismatch', 'ip_conflict', 'dhcp_address', 'suspected_router', 'stale_registration']) {
      check(kinds.includes(kind), `network page lists ${kind} (has ${[...new Set(kinds)]})`);
    }
    seen.network_kinds = [...new Set(kinds)].sort();
    // The gateway checkbox sits on the line of its label.
    const box = await page.locator('[data-testid=registry-form] input[name=gateway]').boundingBox();
    const label = await page.locator('[data-testid=registry-form] label.check span').boundingBox();
    check(box && label && Math.abs((box.y + box.height / 2) - (label.y + label.height / 2)) < 8 && box.x < label.x,
      `gateway checkbox beside its label (box ${JSON.stringify(box)}, label ${JSON.stringify(label)})`);
    await page.goto(`${base}/reviews`);
    const verdicts = await page.locator('[data-verdict]').evaluateAll((cells) => cells.map((c) => c.dataset.verdict));
    for (const verdict of ['keep', 'consolidate', 'cancel', 'not_filed']) {
      check(verdicts.includes(verdict), `reviews page shows ${verdict} (has ${verdicts})`);
    }
    seen.review_verdicts = [...new Set(verdicts)].sort();
    // The review's own report pages (formal Chinese documents) open from the list.
    const report = await page.locator(`[data-testid=review-row-${year}-his] a`).getAttribute('href');
    for (const [name, path] of [['review-report', report], ['review-summary', `/reviews/${year}/`]]) {
      const resp = await page.goto(`${base}${path}`);
      check(resp.status() === 200, `${name} ${path} is 200`);
      const text = await page.evaluate(() => document.body.innerText);
      check(text.includes(`${year}年度`), `${name} is the ${year} review`);
      const english = englishRuns(text);
      check(english.length === 0, `${name} carries English sentences:\n${english.map((e) => `  "${e.words}" in: ${e.line}`).join('\n')}`);
      await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
      seen.pages[name] = { chars: text.length };
    }
    await context.close();
  }
  // The health bureau's user: their department's pages only, in both languages.
  {
    const { context, page } = await signIn(browser, env('DEPT_USER'), env('DEPT_PASSWORD'));
    for (const p of [
      { name: 'department-user-overview', path: '/', need: [['[data-testid=departments] tr[data-testid=department-row-health]', 1]] },
      { name: 'department-user-network', path: '/network', shot: false, need: [['[data-testid=network-findings] tr[data-testid^=network-finding-]', 2]] },
    ]) {
      for (const lang of ['zh', 'en']) {
        await visit(page, p, lang);
        if (p.shot !== false && lang === 'zh') await page.screenshot({ path: `${shots}/${p.name}.png`, fullPage: true });
      }
    }
    await page.goto(`${base}/`);
    check(await page.locator('[data-testid=departments] tr[data-testid=department-row-edu]').count() === 0, 'a department user sees only their department');
    check((await page.goto(`${base}/departments/edu`)).status() === 404, 'another department is not found');
    await context.close();
  }
});
