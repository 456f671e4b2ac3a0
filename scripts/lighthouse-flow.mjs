// Lighthouse's accessibility and best-practices audits on the pages people
// see: the dashboard signed in as the demo administrator, and a visitor's
// folder, file and password pages; then performance too on the visitor's
// folder page and file pages (the viewer: one page per kind of file the
// demo shares), with Lighthouse's desktop and mobile settings, and each
// page's weight (bytes and requests). Run by scripts/lighthouse.sh, which
// starts a local server and passes its info file (see publinks-local
// --info-file).
import puppeteer from 'puppeteer-core';
import lighthouse, { startFlow } from 'lighthouse';
import desktopConfig from 'lighthouse/core/config/desktop-config.js';
import fs from 'node:fs';

const info = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const base = info.base_url;
const admin = info.users.find((u) => u.role === 'admin');
const open = info.links.find((l) => !l.password);
const guarded = info.links.find((l) => l.password);

const browser = await puppeteer.launch({
  executablePath: process.env.CHROME_PATH || '/usr/bin/chromium',
  headless: 'new',
  args: ['--no-sandbox', '--disable-gpu'],
});
const page = await browser.newPage();
const flow = await startFlow(page, {
  config: {
    extends: 'lighthouse:default',
    settings: {
      onlyCategories: ['accessibility', 'best-practices'],
      // The dashboard keeps its token in the tab's sessionStorage and the
      // visitor's pages their session in a cookie: keep both between pages.
      disableStorageReset: true,
      formFactor: 'desktop',
      screenEmulation: { mobile: false, width: 1280, height: 900, deviceScaleFactor: 1, disabled: false },
    },
  },
});

await flow.navigate(`${base}/app/`, { name: 'dashboard: sign-in' });
await page.evaluate((t) => sessionStorage.setItem('publinks.token', t), admin.token);
// A query string makes each a real page load (the routes differ only by hash).
for (const route of ['#/library', '#/collections', '#/settings/links', '#/audit', '#/downloads']) {
  await flow.navigate(`${base}/app/?page=${encodeURIComponent(route)}${route}`, { name: `dashboard: ${route}` });
}
const signedIn = await page.evaluate(() => document.body.innerText.includes('Sign out'));

await flow.navigate(open.url, { name: 'visitor: folder page' });
const file = await page.evaluate(() => document.querySelector('a[href*="/files/"]')?.href);
if (file) await flow.navigate(file, { name: 'visitor: file page' });
// The password page answers 401, which a navigation audit refuses: audit
// the page as loaded instead (a snapshot: every accessibility audit, the
// best-practices audits that need no page load).
await page.goto(guarded.url);
await flow.snapshot({ name: 'visitor: password page (snapshot)' });

// Performance with the rest, desktop then mobile (Lighthouse's own
// settings for each: simulated throttling, mobile a slow 4G and a 4x slower
// CPU), on the visitor's pages that answer 200.
await page.goto(open.url);
const viewerPages = await page.evaluate(() =>
  [...document.querySelectorAll('a.name[href*="/files/"]')].map((a) => ({ href: a.href, name: a.textContent.trim() })),
);
const byKind = new Map();
for (const p of viewerPages) {
  const kind = (p.name.split('.').pop() || '').toLowerCase();
  if (!byKind.has(kind)) byKind.set(kind, p);
}
// Each a navigation of its own, as a first visit (storage reset), as the
// Lighthouse command line does.
const measured = [];
for (const formFactor of ['desktop', 'mobile']) {
  const settings = { onlyCategories: ['performance', 'accessibility', 'best-practices'] };
  const config = formFactor === 'desktop'
    ? { ...desktopConfig, settings: { ...desktopConfig.settings, ...settings } }
    : { extends: 'lighthouse:default', settings };
  const pages = [[`visitor (${formFactor}): folder page`, open.url]];
  for (const [kind, p] of byKind) pages.push([`visitor (${formFactor}): file page, .${kind}`, p.href]);
  for (const [name, url] of pages) {
    const fresh = await browser.newPage();
    const run = await lighthouse(url, { logLevel: 'error' }, config, fresh);
    measured.push({ name, lhr: run.lhr });
    await fresh.close();
  }
}

const result = await flow.createFlowResult();
let perfect = true;
// Every step, the flow's and the measured pages': accessibility and best
// practices must be 100; performance and weight are printed where measured.
for (const step of [...result.steps, ...measured]) {
  const lhr = step.lhr;
  if (lhr.runtimeError) {
    console.log(`${step.name}: ${lhr.runtimeError.code}`);
    perfect = false;
    continue;
  }
  const score = (id) => Math.round(lhr.categories[id].score * 100);
  perfect &&= score('accessibility') === 100 && score('best-practices') === 100;
  let line = `${step.name.padEnd(40)} `;
  if (lhr.categories.performance) {
    const bytes = lhr.audits['total-byte-weight'].numericValue;
    const requests = lhr.audits['network-requests'].details?.items?.length ?? 0;
    line += `performance ${score('performance')}  `;
    line += `accessibility ${score('accessibility')}  best practices ${score('best-practices')}  `;
    line += `${(bytes / 1024).toFixed(1)} KiB in ${requests} requests`;
  } else {
    const failing = Object.values(lhr.audits)
      .filter((a) => a.score !== null && a.score < 1 && !['informative', 'manual', 'notApplicable'].includes(a.scoreDisplayMode))
      .map((a) => a.id);
    line += `accessibility ${score('accessibility')}  best practices ${score('best-practices')}`;
    if (failing.length) line += `  below 1: ${failing.join(', ')}`;
  }
  console.log(line);
}
fs.writeFileSync(process.argv[3], await flow.generateReport());
await browser.close();
if (!signedIn) {
  console.log('the dashboard pages were not signed in');
  process.exit(1);
}
process.exit(perfect ? 0 : 1);
