// End-to-end test of the dashboard in a real browser: Debian's chromium driven by playwright-core.
// Run by tests/integration/browser.rs, which starts the daemon with seeded data and passes:
//   CLOUDGOV_URL, STAFF_USER, STAFF_PASSWORD, DEPT_USER, DEPT_PASSWORD, OWN_VM, OTHER_VM,
//   OTHER_NOTICE, OWN_NOTICE, SCREENSHOT_DIR, CHROMIUM (path to the browser).
// Prints one JSON line of what it saw; exits non-zero on the first failed check.
import { mkdirSync } from 'node:fs';
import { env, check, run, signIn as signInAt } from './browser.mjs';

const base = env('CLOUDGOV_URL');
const shots = env('SCREENSHOT_DIR');
mkdirSync(shots, { recursive: true });
const seen = {};
const signIn = (browser, user, password) => signInAt(browser, base, user, password);

async function shot(page, name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

async function status(page, path) {
  const resp = await page.goto(`${base}${path}`);
  return resp.status();
}

await run(seen, async (browser) => {
  // Center staff: every page, every department.
  {
    const { context, page } = await signIn(browser, env('STAFF_USER'), env('STAFF_PASSWORD'));
    check((await status(page, '/')) === 200, 'overview 200');
    check(await page.locator('html[lang^=zh]').count() === 1, 'Chinese by default');
    const overview = await page.content();
    check(overview.includes(env('OTHER_VM').split('-')[0]) || overview.includes('edu'), 'staff overview lists every department');
    await shot(page, 'overview');
    for (const [name, path] of [
      ['department', '/departments/health'],
      ['project', '/projects/his'],
      ['vm', `/vms/${env('OWN_VM')}?days=30`],
      ['notices', '/notices'],
      ['notice', `/notices/${env('OWN_NOTICE')}`],
      ['network', '/network'],
      ['reviews', '/reviews'],
    ]) {
      check((await status(page, path)) === 200, `staff ${path} 200`);
      await shot(page, name);
    }
    await page.goto(`${base}/vms/${env('OWN_VM')}?days=30`);
    const svg = await page.locator('svg').count();
    check(svg >= 1, 'VM page has SVG charts');
    seen.vm_charts = svg;
    check((await status(page, `/vms/${env('OTHER_VM')}`)) === 200, 'staff may see the other department\'s VM');
    // Staff actions through the forms: register an IP, request and confirm a release.
    await page.goto(`${base}/network`);
    await page.fill('[data-testid=registry-form] input[name=ip]', '10.20.30.40');
    await page.fill('[data-testid=registry-form] input[name=mac]', '52-54-00-AB-CD-EF');
    await page.fill('[data-testid=registry-form] input[name=department]', 'health');
    await page.fill('[data-testid=registry-form] input[name=holder]', '张三');
    await Promise.all([page.waitForNavigation(), page.click('[data-testid=registry-form] button[type=submit]')]);
    check(await page.locator('[data-testid="registry-row-10.20.30.40"]').count() === 1, 'the registered IP is listed');
    // The outcome, said in the page's language (Chinese here).
    check(await page.locator('[data-testid=flash][data-done=flash_registry_registered]').count() === 1, 'the outcome is shown');
    check((await page.locator('[data-testid=flash]').textContent()).includes('IP地址已备案'), 'the outcome is in Chinese');
    const otherVm = env('OTHER_VM');
    await page.goto(`${base}/vms/${otherVm}`);
    await page.fill('[data-testid=release-request-form] input[name=reason]', '系统已迁移 (migrated)');
    await Promise.all([page.waitForNavigation(), page.click('[data-testid=release-request-form] button[type=submit]')]);
    await Promise.all([page.waitForNavigation(), page.click('[data-testid=release-confirm-form] button[type=submit]')]);
    check(await page.locator('[data-testid=flash][data-done=flash_vm_released]').count() === 1, `release confirmed (${page.url()})`);
    seen.staff_actions = true;
    check((await status(page, '/audit')) === 200, 'staff see the audit log');
    const audit = await page.content();
    for (const action of ['set_registry', 'request_release', 'confirm_release']) {
      check(audit.includes(action), `audit log shows ${action}`);
    }
    await shot(page, 'audit');
    // English switch.
    await page.goto(`${base}/`);
    await Promise.all([page.waitForNavigation(), page.click('[data-testid=lang-en]')]);
    check(await page.locator('html[lang=en]').count() === 1, 'English after the switch');
    await shot(page, 'overview-en');
    await page.goto(`${base}/notices`);
    check(await page.locator('html[lang=en]').count() === 1, 'the language choice sticks');
    await Promise.all([page.waitForNavigation(), page.click('[data-testid=lang-zh]')]);
    check(await page.locator('html[lang^=zh]').count() === 1, 'back to Chinese');
    await context.close();
  }

  // A department user: their own department only, by page, by URL and by API.
  {
    const { context, page } = await signIn(browser, env('DEPT_USER'), env('DEPT_PASSWORD'));
    check((await status(page, '/')) === 200, 'department overview 200');
    await shot(page, 'department-user-overview');
    check((await status(page, `/vms/${env('OWN_VM')}`)) === 200, 'own VM 200');
    check((await status(page, `/vms/${env('OTHER_VM')}`)) === 404, 'other department\'s VM by URL is 404');
    check((await status(page, `/notices/${env('OTHER_NOTICE')}`)) === 404, 'other department\'s notice by URL is 404');
    check((await status(page, '/departments/edu')) === 404, 'other department page is 404');
    check((await status(page, '/audit')) === 404, 'no audit log for department users');
    await page.goto(`${base}/network`);
    check(await page.locator('[data-testid=registry-form]').count() === 0, 'no registry form for department users');
    await page.goto(`${base}/`);
    const api = await page.evaluate(async ({ otherVm, otherNotice }) => {
      const get = async (path) => {
        const r = await fetch(path);
        return { status: r.status, body: await r.json().catch(() => null) };
      };
      const findings = await get('/api/v1/findings');
      const notice = await get(`/api/v1/notices/${otherNotice}`);
      const deployed = await fetch(`/api/v1/vms/${otherVm}/deployed`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ on: '2025-09-01' }),
      });
      return {
        departments: [...new Set((findings.body || []).map((f) => f.department))],
        vms: [...new Set((findings.body || []).map((f) => f.vm))],
        otherNotice: notice.status,
        postWithoutCsrf: deployed.status,
      };
    }, { otherVm: env('OTHER_VM'), otherNotice: env('OTHER_NOTICE') });
    check(api.departments.length === 1 && api.departments[0] === 'health', `API findings only of health: ${api.departments}`);
    check(!api.vms.includes(env('OTHER_VM')), 'API findings do not include the other VM');
    check(api.otherNotice === 404, 'other department\'s notice by API is 404');
    check(api.postWithoutCsrf === 403, 'a cookie POST without X-CSRF-Token is refused');
    seen.department_api = api;

    // Contest their own notice through the form; the timeline shows the reason.
    await page.goto(`${base}/notices/${env('OWN_NOTICE')}`);
    const reason = '业务高峰在月底，需要保留资源 (month-end peak)';
    await page.fill('[data-testid=contest-form] textarea[name=reason], [data-testid=contest-form] input[name=reason]', reason);
    await Promise.all([page.waitForNavigation(), page.click('[data-testid=contest-form] button[type=submit]')]);
    check(page.url().includes(`/notices/${env('OWN_NOTICE')}`), `back on the notice after contesting (${page.url()})`);
    check((await page.content()).includes('业务高峰在月底'), 'the contest reason is on the notice page');
    await shot(page, 'notice-contested');
    seen.contested = true;
    await context.close();
  }
});
