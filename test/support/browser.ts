// The browser tests' shared start: the web console built as the sources say, Debian's chromium
// through playwright-core, and a page whose errors are collected for the test to check.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from './daemon.ts';

const CHROMIUM = '/usr/bin/chromium';
// Without the background-networking flags chromium keeps trying to reach Google's hosts,
// which this machine's closed network refuses.
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const SHOTS = join(ROOT, 'docs/screenshots');

/** describe()'s skip: why the browser tests cannot run here, or false. Never under CI=true: there a missing chromium fails them. */
export const browserSkip = existsSync(CHROMIUM) || process.env.CI === 'true' ? false : `${CHROMIUM} is not installed (scripts/install-deps.sh installs it)`;

export interface BrowserPage { browser: Browser; ctx: BrowserContext; page: Page; pageErrors: string[] }

export async function openBrowser(viewport: { width: number; height: number }): Promise<BrowserPage> {
  // The app as the sources say (a no-op when web/dist is up to date; stdout would mix with the test report).
  execFileSync(join(ROOT, 'scripts/build.sh'), { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  // 4xx answers are part of the tests (a wrong sign-in, the API's refusals), and chromium logs
  // each as "Failed to load resource"; anything else is a real error.
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text()); });
  return { browser, ctx, page, pageErrors };
}

/** Sign in to `url`'s console with the host token and wait for the VM list (the page the console opens on). */
export async function signInWithToken(page: Page, url: string, token: string): Promise<void> {
  await page.goto(url);
  await page.getByRole('radio', { name: 'Sign in with the host token' }).check();
  await page.getByLabel('Host token', { exact: true }).fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Virtual Machines' }).waitFor();
}
