// What the browser tests share: their environment, checks, the browser and signing in.
import { chromium } from 'playwright-core';

export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

export function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

// Debian's chromium (CHROMIUM), headless, without anything that phones home.
export function launch() {
  return chromium.launch({
    executablePath: env('CHROMIUM'),
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

// Signs in through the form: `/` first redirects to the sign-in page, and the session cookie
// that comes back is HttpOnly and SameSite=Strict.
export async function signIn(browser, base, user, password) {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, locale: 'zh-CN' });
  const page = await context.newPage();
  const first = await page.goto(`${base}/`);
  check(page.url().includes('/login'), `unauthenticated / redirects to /login (at ${page.url()}, ${first.status()})`);
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  check(!page.url().includes('/login'), `${user} signed in (at ${page.url()})`);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'cloudgov_session');
  check(session && session.httpOnly && session.sameSite === 'Strict', 'session cookie is HttpOnly and SameSite=Strict');
  return { context, page };
}

// Runs a browser test: one JSON line of what it `seen` at the end, `ok: false` with the error
// (and a failing exit code) on the first failed check.
export async function run(seen, body) {
  const browser = await launch();
  try {
    await body(browser);
    console.log(JSON.stringify({ ok: true, seen }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: String(e && e.stack || e), seen }));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
