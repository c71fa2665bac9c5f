// Opens every page of the built book in headless Chromium and checks what a reader sees:
// typeset math, loaded figures, kernel-free sliders that change their figure, no JavaScript error,
// nothing fetched from outside 127.0.0.1. Writes a full-page screenshot of each page.
// Usage (run.sh does this): node check_site.mjs --site DIR --url http://127.0.0.1:PORT/
//                             --screenshots DIR [--chromium /usr/bin/chromium]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: args } = parseArgs({
  options: {
    site: { type: 'string' },
    url: { type: 'string' },
    screenshots: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});
if (!args.site || !args.url || !args.screenshots) {
  console.error('usage: check_site.mjs --site DIR --url URL --screenshots DIR [--chromium PATH]');
  process.exit(2);
}
const baseUrl = args.url.endsWith('/') ? args.url : `${args.url}/`;

// Problems that are not the book's own: still listed on each page they affect, but they do not
// fail it. Anything else fetched from outside 127.0.0.1 (blocked: the test is offline), any other
// JavaScript error or failed request fails the page.
const KNOWN = [
  {
    pattern: /^fetches from outside the test server: https:\/\/maxcdn\.bootstrapcdn\.com\/font-awesome\/4\.4\.0\/css\/font-awesome\.min\.css$/,
    why: "matplotlib's to_jshtml() links Font Awesome 4.4 from a CDN (the theme's own icons draw its buttons)",
  },
  {
    pattern: /^JavaScript error: Identifier 'THEBE_JS_URL' has already been declared$/,
    why: "Sphinx 7.4 writes sphinx-thebe's inline config script twice; the second copy throws",
  },
  {
    pattern: /^console error: Got invalid theme mode: \. Resetting to auto\.$/,
    why: 'pydata-sphinx-theme logs this on a first visit (nothing in localStorage yet)',
  },
  {
    // The path the fonts are sought under depends on how the widget script resolved its own URL.
    pattern: /^HTTP 404 for .*\/@jupyter-widgets\/(html-manager\/dist\/)?[0-9a-f]{20}\.(woff2?|ttf|eot|svg)$/,
    why: 'html-manager 1.0.6 looks for its Font Awesome 5 fonts next to the page (saved widget state)',
  },
];
const PAGE_TIMEOUT_MS = 30_000;
const CONCURRENCY = Math.min(4, os.availableParallelism());

// Every page of the book: the site's .html files outside _static/, _sources/, _images/, except
// Sphinx's generated index and search pages.
function findPages(dir, rel = '') {
  const pages = [];
  for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const relPath = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (!entry.name.startsWith('_') && !entry.name.startsWith('.')) {
        pages.push(...findPages(dir, relPath));
      }
    } else if (entry.name.endsWith('.html') && !['genindex.html', 'search.html'].includes(relPath)) {
      pages.push(relPath);
    }
  }
  return pages.sort();
}

// Runs in the page: math, raw TeX left in the text, images.
async function inspectPage() {
  const article = document.querySelector('article.bd-article');
  if (!article) return { noArticle: true };
  const snippet = (text, i) => text.slice(Math.max(0, i - 30), i + 40).replace(/\s+/g, ' ');

  // Math: every element Sphinx marked as math must hold a MathJax container and no TeX error.
  const mathElements = [...document.querySelectorAll('.math')];
  const untypeset = mathElements
    .filter((el) => !el.querySelector('mjx-container'))
    .map((el) => el.textContent.replace(/\s+/g, ' ').trim().slice(0, 80));
  const containers = document.querySelectorAll('mjx-container').length;
  // TeX errors: MathJax draws them as merror; an undefined macro as its name in red (seen in the
  // MathML that MathJax keeps beside its output for screen readers).
  const texErrors = [];
  for (const container of document.querySelectorAll('mjx-container')) {
    for (const el of container.querySelectorAll('mjx-merror')) {
      texErrors.push(el.getAttribute('data-mjx-error') || 'merror');
    }
    for (const el of container.querySelectorAll('mjx-assistive-mml mtext[mathcolor="red"]')) {
      if (el.textContent.startsWith('\\')) texErrors.push(`undefined macro ${el.textContent.slice(0, 40)}`);
    }
  }

  // Raw TeX anywhere in the page's text (hidden parts included: a reader may unfold them), except
  // in code, where it may be meant literally: display and inline delimiters, and $...$ whose
  // content looks like TeX (a backslash, ^, _, braces, or a single letter).
  const skip = 'script, style, noscript, template, textarea, pre, code, mjx-container, svg';
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const delimiters = /\$\$|\\\[|\\\]|\\\(|\\\)/g;
  const dollars = /\$([^\s$](?:[^$\n]*[^\s$])?)\$/g;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement?.closest(skip)) continue;
    const found = [...node.data.matchAll(delimiters)];
    for (const m of node.data.matchAll(dollars)) {
      if (/[\\^_{}]/.test(m[1]) || /^[A-Za-z]$/.test(m[1])) found.push(m);
    }
    const seen = new Set();
    for (const m of found) {
      if (seen.has(m.index)) continue;
      seen.add(m.index);
      raw.push(`${JSON.stringify(m[0].slice(0, 40))} in <${node.parentElement.tagName.toLowerCase()}>: ` +
        `"${snippet(node.data, m.index)}"`);
    }
  }

  // Images (the article's figures, and the theme's own, such as the launch buttons' logos): load
  // the lazy ones, wait for all, report those that did not decode.
  const images = [...document.querySelectorAll('img')];
  for (const img of images) img.loading = 'eager';
  await Promise.all(
    images.map((img) =>
      Promise.race([img.decode().catch(() => {}), new Promise((r) => setTimeout(r, 10_000))]),
    ),
  );
  const broken = images
    .filter((img) => !(img.complete && img.naturalWidth > 0))
    .map((img) => (img.getAttribute('src') || `<img id=${img.id} without src>`).slice(0, 80));

  // Widgets saved with the notebook: state, and the views the embed manager must draw.
  const widgetState = !!document.querySelector(
    'script[type="application/vnd.jupyter.widget-state+json"]',
  );
  // The embed manager draws each saved view just before its <script>, in a div.widget-subarea. A
  // control in it (slider, button, dropdown...) does nothing on the static site: no kernel runs.
  const kinds = [
    'slider', 'dropdown', 'button', 'text', 'textarea', 'checkbox', 'toggle-button',
    'toggle-buttons', 'radio', 'select', 'play', 'colorpicker', 'datepicker',
  ];
  const controls = kinds.map((kind) => `.widget-${kind}`).join(', ');
  const widgetViews = [
    ...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'),
  ].map((script) => {
    const view = script.previousElementSibling?.matches('.widget-subarea')
      ? script.previousElementSibling
      : null;
    return {
      drawn: !!view?.querySelector('.jupyter-widgets'),
      controls: [...(view?.querySelectorAll(controls) || [])].map(
        (el) => kinds.find((kind) => el.matches(`.widget-${kind}`)),
      ),
    };
  });

  return {
    mathElements: mathElements.length,
    untypeset,
    containers,
    texErrors,
    raw,
    images: images.length,
    broken,
    widgetState,
    widgetViews,
    sliders: article.querySelectorAll('input[type="range"]').length,
  };
}

async function checkSliders(page, shotBase, failures, notes) {
  const sliders = page.locator('article.bd-article input[type="range"]');
  const count = await sliders.count();
  let moved = 0;
  for (let i = 0; i < count; i++) {
    const slider = sliders.nth(i);
    const animation = slider.locator('xpath=ancestor::div[contains(@class, "animation")][1]');
    if ((await animation.count()) === 0) {
      notes.push(`slider ${i + 1} is not part of a matplotlib animation: not checked`);
      continue;
    }
    const frame = animation.locator('img').first();
    const before = await slider.evaluate((el) => ({ value: +el.value, max: +el.max }));
    const src0 = await frame.getAttribute('src');
    if (!src0) {
      failures.push(`slider ${i + 1}: its animation shows no frame (the animation's script did not run)`);
      continue;
    }
    if (before.max < 1) {
      failures.push(`slider ${i + 1}: max=${before.max}, the animation has fewer than two frames`);
      continue;
    }
    // The frame must stay put until the slider moves: a playing animation would pass otherwise.
    await page.waitForTimeout(300);
    if ((await frame.getAttribute('src')) !== src0) {
      failures.push(`slider ${i + 1}: the frame changes by itself (the animation is playing)`);
      continue;
    }
    // Move it as a reader does: focus it and press End (Home if it already sits at the end), which
    // fires the input and change events the animation listens to.
    const target = before.value === before.max ? 0 : before.max;
    await slider.scrollIntoViewIfNeeded();
    await slider.focus();
    await page.keyboard.press(target === 0 ? 'Home' : 'End');
    const changed = await frame
      .evaluate(
        (img, src) =>
          new Promise((resolve) => {
            const done = () => resolve(img.getAttribute('src') !== src);
            if (img.getAttribute('src') !== src) return done();
            const observer = new MutationObserver(done);
            observer.observe(img, { attributes: true, attributeFilter: ['src'] });
            setTimeout(done, 5_000);
          }),
        src0,
      )
      .catch(() => false);
    const after = await slider.evaluate((el) => +el.value);
    const decoded = await frame.evaluate(async (img) => {
      await img.decode().catch(() => {});
      return img.naturalWidth > 0;
    });
    if (after !== target) {
      failures.push(`slider ${i + 1}: value ${after} after the key press, expected ${target}`);
    } else if (!changed) {
      failures.push(`slider ${i + 1}: moved ${before.value}→${after} but the figure did not change`);
    } else if (!decoded) {
      failures.push(`slider ${i + 1}: frame ${after} does not decode as an image`);
    } else {
      moved++;
      notes.push(`slider ${i + 1}: frame ${before.value}→${after} of ${before.max + 1}`);
      await animation.screenshot({ path: `${shotBase}--slider-${i + 1}.png` });
    }
  }
  return moved;
}

async function checkPage(browser, rel) {
  const t0 = Date.now();
  const failures = [];
  const notes = [];
  const file = path.join(args.site, rel);
  const html = fs.readFileSync(file, 'utf8');

  // Sphinx's root index.html is a redirect to the first page: check where it points, no more.
  const refresh = html.length < 1000 && html.match(/http-equiv="Refresh"[^>]*url=([^"]+)"/i);
  if (refresh) {
    const target = path.join(path.dirname(file), refresh[1]);
    if (!fs.existsSync(target)) failures.push(`redirects to ${refresh[1]}, which does not exist`);
    return { rel, failures, notes: [`redirect to ${refresh[1]}`], known: new Map(), ms: Date.now() - t0 };
  }

  // A fresh context per page: no storage shared between pages checked at the same time.
  const context = await browser.newContext({
    viewport: { width: 1280, height: 900 },
    deviceScaleFactor: 1,
    serviceWorkers: 'block',
  });
  const page = await context.newPage();
  const external = new Set();
  page.on('pageerror', (err) => failures.push(`JavaScript error: ${err.message.split('\n')[0]}`));
  const httpErrors = new Set();
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    // Failed loads are reported once each, by the handlers below.
    if (/^Failed to load resource/.test(text)) return;
    failures.push(`console error: ${text.slice(0, 200)}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) {
      httpErrors.add(response.url());
      failures.push(`HTTP ${response.status()} for ${response.url()}`);
    }
  });
  page.on('requestfailed', (request) => {
    const url = request.url();
    if (url.startsWith(baseUrl) && !httpErrors.has(url)) {
      failures.push(`request failed: ${url} (${request.failure()?.errorText})`);
    }
  });
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(baseUrl)) return route.continue();
    external.add(url);
    return route.abort('blockedbyclient');
  });

  try {
    await page.goto(baseUrl + rel, { waitUntil: 'load', timeout: PAGE_TIMEOUT_MS });

    // MathJax is on the pages that have math; wait until it has typeset them.
    const mathjax = await page.evaluate(() => !!document.querySelector('script[src*="tex-mml-chtml"]'));
    if (mathjax) {
      await page.waitForFunction(() => window.MathJax?.startup?.promise, null, { timeout: PAGE_TIMEOUT_MS });
      await page.evaluate(() => window.MathJax.startup.promise);
    }
    // The embed manager draws saved widgets after the load event; give it time to.
    const views = await page.evaluate(
      () => document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
    );
    if (views > 0) {
      await page
        .waitForFunction(
          () => [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')]
            .every((script) => script.previousElementSibling?.matches('.widget-subarea') &&
              script.previousElementSibling.querySelector('.jupyter-widgets')),
          null,
          { timeout: 10_000 },
        )
        .catch(() => {});
    }
    await page.evaluate(() => document.fonts.ready);

    const r = await page.evaluate(inspectPage);
    if (r.noArticle) throw new Error('no <article class="bd-article">: has the theme changed?');
    if (r.mathElements > 0 && !mathjax) failures.push(`${r.mathElements} math elements but no MathJax`);
    if (r.mathElements > 0 && r.containers === 0) failures.push('math on the page, but no mjx-container');
    for (const tex of r.untypeset.slice(0, 5)) failures.push(`math not typeset: ${tex}`);
    if (r.untypeset.length > 5) failures.push(`... and ${r.untypeset.length - 5} more untypeset`);
    for (const err of r.texErrors.slice(0, 5)) failures.push(`TeX error: ${err}`);
    for (const raw of r.raw.slice(0, 5)) failures.push(`raw TeX in the text: ${raw}`);
    if (r.raw.length > 5) failures.push(`... and ${r.raw.length - 5} more raw TeX delimiters`);
    for (const src of r.broken) failures.push(`image did not load: ${src}`);
    if (r.widgetState) {
      const managerLoaded = await page.evaluate(
        () => typeof window.require === 'function' && typeof window.require.defined === 'function' &&
          window.require.defined('@jupyter-widgets/base'),
      );
      if (!managerLoaded) failures.push('saved widget state, but the widget manager did not load');
    }
    if (r.widgetViews.length > 0) {
      const undrawn = r.widgetViews.filter((v) => !v.drawn).length;
      if (undrawn) failures.push(`${undrawn} of ${r.widgetViews.length} saved widget views not drawn`);
      const withControls = r.widgetViews.filter((v) => v.controls.length > 0);
      for (const v of withControls) {
        failures.push(`a saved widget shows controls that do nothing without a kernel ` +
          `(${[...new Set(v.controls)].join(', ')}): tag its cell remove-output`);
      }
      notes.push(`${r.widgetViews.length} widget view(s) drawn`);
    }

    const shotBase = path.join(args.screenshots, rel.replace(/\.html$/, '').replaceAll('/', '--'));
    await page.screenshot({ path: `${shotBase}.png`, fullPage: true });
    const moved = await checkSliders(page, shotBase, failures, notes);

    for (const url of external) failures.push(`fetches from outside the test server: ${url}`);
    notes.unshift(
      `math ${r.mathElements - r.untypeset.length}/${r.mathElements} typeset`,
      `${r.images - r.broken.length}/${r.images} images`,
      `${moved}/${r.sliders} sliders moved`,
    );
  } catch (err) {
    failures.push(`${err.name}: ${err.message.split('\n')[0]}`);
  } finally {
    await context.close();
  }
  // Set the known problems apart, one note per kind.
  const known = new Map();
  const real = failures.filter((f) => {
    const k = KNOWN.find((entry) => entry.pattern.test(f));
    if (k) known.set(k.why, (known.get(k.why) || 0) + 1);
    return !k;
  });
  if (known.size) notes.push(`${[...known.values()].reduce((a, b) => a + b)} known problem(s), listed below`);
  return { rel, failures: real, notes, known, ms: Date.now() - t0 };
}

const pages = findPages(args.site);
const expected = ['intro.html', 'bibliography.html'];
const missing = expected.filter((p) => !pages.includes(p));
if (missing.length || !pages.some((p) => p.startsWith('chapters/'))) {
  console.error(`browser-test: the site in ${args.site} lacks ${missing.join(', ') || 'chapters/'}`);
  process.exit(1);
}
fs.mkdirSync(args.screenshots, { recursive: true });

const browser = await chromium.launch({
  executablePath: args.chromium,
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
// A few pages at a time; results are printed in page order as they come in.
let passed = 0;
let failed = 0;
const knownPages = new Map();
try {
  const results = new Array(pages.length);
  let next = 0;
  const worker = async () => {
    while (next < pages.length) {
      const i = next++;
      results[i] = checkPage(browser, pages[i]);
      await results[i];
    }
  };
  const workers = Array.from({ length: CONCURRENCY }, worker);
  for (let i = 0; i < pages.length; i++) {
    while (!results[i]) await new Promise((r) => setTimeout(r, 50));
    const result = await results[i];
    const seconds = (result.ms / 1000).toFixed(1);
    const ok = result.failures.length === 0;
    if (ok) passed++;
    else failed++;
    console.log(`${ok ? 'PASS' : 'FAIL'} ${result.rel} (${seconds} s): ${result.notes.join('; ')}`);
    for (const f of result.failures) console.log(`     - ${f}`);
    for (const why of result.known.keys()) knownPages.set(why, (knownPages.get(why) || 0) + 1);
  }
  await Promise.all(workers);
} finally {
  await browser.close();
}
if (knownPages.size) {
  console.log("Known problems that are not the book's own (they do not fail a page):");
  for (const [why, n] of knownPages) console.log(`  - ${why} (${n} page${n > 1 ? 's' : ''})`);
}
console.log(`${passed} passed, ${failed} failed (${pages.length} pages; screenshots in ${args.screenshots})`);
process.exit(failed === 0 ? 0 : 1);
