// coop explore: the portrait tab, in the plane of the mechanism strengths m1 (ICL) and m2 (CIWL), as
// `coop toy portrait` draws one panel: the flow with b, c clamped at the target (arrows, darker =
// faster), the free gradient flow from the draw (purple), fixed points by type; and the page's own
// trajectory (its ICL and CIWL strengths, blue) on top.
"use strict";

const PORTRAIT = {left: 52, top: 12, size: 360};
const FIXED_POINT_STYLE = {  // as toymodel.plots.FIXED_POINT_STYLE
  "stable": ["circle", "#000", "#000"], "marginally stable": ["circle", "#000", "#fff"],
  "saddle": ["cross", "#b00020", "#b00020"], "unstable": ["square", "#b00020", "#fff"],
  "degenerate saddle (higher order)": ["diamond", "#b00020", "#fff"],
};

function drawPortrait(explore) {
  const p = explore.portrait, canvas = document.getElementById("portrait-canvas");
  const ctx = canvas.getContext("2d"), dpr = window.devicePixelRatio || 1;
  const width = PORTRAIT.left + PORTRAIT.size + 240, height = PORTRAIT.top + PORTRAIT.size + 44;
  if (canvas.width !== width * dpr) {
    canvas.width = width * dpr; canvas.height = height * dpr;
    canvas.style.width = width + "px"; canvas.style.height = height + "px";
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  if (!p) return;
  const lo = p.m1[0], hi = p.m1[p.m1.length - 1];
  const px = (m1) => PORTRAIT.left + (m1 - lo) / (hi - lo) * PORTRAIT.size;
  const py = (m2) => PORTRAIT.top + PORTRAIT.size - (m2 - lo) / (hi - lo) * PORTRAIT.size;
  ctx.save();
  ctx.beginPath();
  ctx.rect(PORTRAIT.left, PORTRAIT.top, PORTRAIT.size, PORTRAIT.size);
  ctx.clip();
  // the clamped flow: an arrow of fixed length per second grid point, grey by log speed
  const speeds = [];
  p.u.forEach((row, i) => row.forEach((u, j) => speeds.push(Math.log10(Math.hypot(u, p.v[i][j]) + 1e-12))));
  const smin = Math.min(...speeds), smax = Math.max(...speeds);
  for (let i = 0; i < p.m2.length; i += 2) {
    for (let j = 0; j < p.m1.length; j += 2) {
      const u = p.u[i][j], v = p.v[i][j], speed = Math.hypot(u, v);
      if (!(speed > 0)) continue;
      const shade = Math.round(200 - 170 * (Math.log10(speed + 1e-12) - smin) / (smax - smin || 1));
      arrow(ctx, px(p.m1[j]), py(p.m2[i]), u / speed, -v / speed, 9, `rgb(${shade},${shade},${shade})`);
    }
  }
  const path = (m1, m2, color, lineWidth) => {
    ctx.strokeStyle = color; ctx.lineWidth = lineWidth;
    ctx.beginPath();
    m1.forEach((x, k) => (k ? ctx.lineTo(px(x), py(m2[k])) : ctx.moveTo(px(x), py(m2[k]))));
    ctx.stroke();
  };
  for (const f of p.flows) path(f.m1, f.m2, "rgba(142,107,176,0.7)", 6);  // wide: gd follows the flow closely
  const t = explore.traj;
  if (t) path(t.columns.icl_strength, t.columns.ciwl_strength, "#1f6fb4", 1.5);
  for (const fp of p.fixed_points) {
    if (fp.line === "m2") path([lo, hi], [1, 1], "rgba(0,0,0,0.6)", 3);
    else if (fp.line === "m1") path([1, 1], [lo, hi], "rgba(0,0,0,0.6)", 3);
    else marker(ctx, px(fp.m1), py(fp.m2), FIXED_POINT_STYLE[fp.type] || FIXED_POINT_STYLE.unstable);
  }
  ctx.restore();
  ctx.strokeStyle = "#000"; ctx.lineWidth = 1;
  ctx.strokeRect(PORTRAIT.left, PORTRAIT.top, PORTRAIT.size, PORTRAIT.size);
  ctx.fillStyle = "#222"; ctx.font = "11px system-ui, sans-serif"; ctx.textAlign = "center";
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    ctx.fillText(String(v), px(v), PORTRAIT.top + PORTRAIT.size + 14);
    ctx.textAlign = "right"; ctx.fillText(String(v), PORTRAIT.left - 4, py(v) + 4); ctx.textAlign = "center";
  }
  ctx.fillText("ICL strength m1", px((lo + hi) / 2), PORTRAIT.top + PORTRAIT.size + 32);
  ctx.save(); ctx.translate(12, py((lo + hi) / 2)); ctx.rotate(-Math.PI / 2);
  ctx.fillText("CIWL strength m2", 0, 0); ctx.restore();
  // legend
  const x0 = PORTRAIT.left + PORTRAIT.size + 14;
  let y = PORTRAIT.top + 10;
  ctx.textAlign = "left";
  const entry = (draw, label) => { draw(x0 + 8, y); ctx.fillStyle = "#222"; ctx.fillText(label, x0 + 22, y + 4); y += 18; };
  entry((x, yy) => arrow(ctx, x - 6, yy, 1, 0, 12, "#777"), "flow, b and c clamped");
  entry((x, yy) => { ctx.strokeStyle = "rgba(142,107,176,0.7)"; ctx.lineWidth = 6; ctx.beginPath(); ctx.moveTo(x - 7, yy); ctx.lineTo(x + 7, yy); ctx.stroke(); }, "gradient flow, free");
  entry((x, yy) => { ctx.strokeStyle = "#1f6fb4"; ctx.lineWidth = 1.5; ctx.beginPath(); ctx.moveTo(x - 7, yy); ctx.lineTo(x + 7, yy); ctx.stroke(); }, "this page's trajectory");
  const types = new Set(p.fixed_points.filter((fp) => !fp.line).map((fp) => fp.type));
  for (const type of types) entry((x, yy) => marker(ctx, x, yy, FIXED_POINT_STYLE[type] || FIXED_POINT_STYLE.unstable), type);
  document.getElementById("portrait-command").textContent = p.command;
}

function arrow(ctx, x, y, dx, dy, length, color) {
  const x1 = x + dx * length, y1 = y + dy * length;
  ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x1, y1); ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - 3.5 * dx + 2 * dy, y1 - 3.5 * dy - 2 * dx);
  ctx.lineTo(x1 - 3.5 * dx - 2 * dy, y1 - 3.5 * dy + 2 * dx);
  ctx.fill();
}

function marker(ctx, x, y, [shape, edge, fill]) {
  ctx.strokeStyle = edge; ctx.fillStyle = fill; ctx.lineWidth = 1.8;
  ctx.beginPath();
  if (shape === "circle") ctx.arc(x, y, 5.5, 0, 2 * Math.PI);
  else if (shape === "square") ctx.rect(x - 5, y - 5, 10, 10);
  else if (shape === "diamond") { ctx.moveTo(x, y - 6); ctx.lineTo(x + 6, y); ctx.lineTo(x, y + 6); ctx.lineTo(x - 6, y); ctx.closePath(); }
  else { ctx.moveTo(x - 5, y - 5); ctx.lineTo(x + 5, y + 5); ctx.moveTo(x + 5, y - 5); ctx.lineTo(x - 5, y + 5); ctx.stroke(); return; }
  ctx.fill(); ctx.stroke();
}
