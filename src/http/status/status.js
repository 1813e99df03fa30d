// The status page's charts: plain browser JavaScript, served as is (no build step). The page works without it;
// the tables carry every figure. Data comes from the page's JSON block, never from inline script.
(() => {
  const block = document.getElementById('chart-data');
  if (!block || typeof Chart === 'undefined') return;
  const data = JSON.parse(block.textContent);
  const usd = (v) => `$${Number(v).toLocaleString('en-US', { maximumFractionDigits: 0 })}`;
  const colors = { spent: '#1d4ed8', band: 'rgba(245, 158, 11, 0.25)', p50: '#b45309', limit: '#b91c1c' };
  Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  Chart.defaults.animation = false;

  const org = data.organization;
  const orgCanvas = document.getElementById('chart-organization');
  if (org && orgCanvas) {
    const datasets = [
      { label: 'spent (priced)', data: org.spent, borderColor: colors.spent, backgroundColor: colors.spent, pointRadius: 0, borderWidth: 2 },
      { label: 'p10', data: org.p10, borderColor: 'rgba(245, 158, 11, 0.6)', pointRadius: 0, borderWidth: 1, spanGaps: true },
      { label: 'p10–p90 at month end', data: org.p90, borderColor: 'rgba(245, 158, 11, 0.6)', backgroundColor: colors.band, fill: '-1', pointRadius: 0, borderWidth: 1, spanGaps: true },
      { label: 'likely (p50)', data: org.p50, borderColor: colors.p50, borderDash: [6, 4], pointRadius: 0, borderWidth: 2, spanGaps: true },
    ];
    if (org.limit !== null) {
      datasets.push({ label: 'limit', data: org.labels.map(() => org.limit), borderColor: colors.limit, pointRadius: 0, borderWidth: 2 });
    }
    new Chart(orgCanvas, {
      type: 'line',
      data: { labels: org.labels.map((d) => d.slice(8)), datasets },
      options: {
        maintainAspectRatio: false,
        plugins: {
          legend: { labels: { boxWidth: 12, filter: (item) => item.text !== 'p10' } },
          tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${usd(c.parsed.y)}` } },
        },
        scales: { y: { beginAtZero: true, ticks: { callback: usd } }, x: { ticks: { maxRotation: 0, autoSkip: true } } },
      },
    });
  }

  // One bullet per scope: month to date, the month-end p10–p90 band, and the limit as a tick.
  for (const s of data.scopes) {
    const canvas = document.getElementById(s.id);
    if (!canvas) continue;
    // one scale for every scope of a kind: a short bar is a small scope, not a small share of its own band
    const max = s.max * 1.05 || 1;
    const datasets = [
      { type: 'bar', label: 'month to date', data: [[0, s.monthToDate]], backgroundColor: colors.spent, barPercentage: 0.5, grouped: false, order: 1 },
      { type: 'bar', label: 'p10–p90', data: [[s.p10, s.p90]], backgroundColor: colors.band, borderColor: 'rgba(245, 158, 11, 0.8)', borderWidth: 1, barPercentage: 1, grouped: false, order: 2 },
    ];
    if (s.limit !== null) {
      datasets.push({ type: 'scatter', label: 'limit', data: [{ x: s.limit, y: 0 }], pointStyle: 'line', rotation: 90, radius: 9, borderWidth: 3, borderColor: colors.limit, order: 0 });
    }
    new Chart(canvas, {
      data: { labels: [''], datasets },
      options: {
        indexAxis: 'y',
        maintainAspectRatio: false,
        plugins: { legend: { display: false }, tooltip: { enabled: false } },
        scales: { x: { min: 0, max, display: false }, y: { display: false } },
      },
    });
  }
})();
