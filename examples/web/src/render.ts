// Drawing Gem Rush: nothing here is simulation state. Positions are
// interpolated between the last two ticks for a smooth 60 frames a
// second; colours come from public ids.

import { GEM_RADIUS, HEIGHT, PLAYER_RADIUS, UNIT, WIDTH, type World } from "./sim.js";

/** hue gives every public id its own colour, the same in every tab. */
export function hue(id: string): number {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) % 360;
  return (h * 137) % 360;
}

/** displayName is a player's name, or a name made of its public id. */
export function displayName(name: string, id: string): string {
  return name || `player ${id}`;
}

/** Positions remembers where the discs were before the last tick, to draw them in between. */
export class Positions {
  #prev = new Map<string, [number, number]>();
  #at = 0;

  /** capture notes where the discs are, before a frame's ticks are processed. */
  capture(world: World): Map<string, [number, number]> {
    return new Map(world.players.map((p) => [p.id, [p.x, p.y]]));
  }

  /** moved is called when a frame processed ticks: the discs go from where they were to where they are. */
  moved(before: Map<string, [number, number]>, now: number): void {
    this.#prev = before;
    this.#at = now;
  }

  /** of returns where to draw a disc at now, in pixels. */
  of(id: string, x: number, y: number, now: number, tickMs: number): [number, number] {
    const prev = this.#prev.get(id);
    const f = Math.min(1, Math.max(0, (now - this.#at) / tickMs));
    if (!prev || Math.abs(prev[0] - x) > 64 * UNIT || Math.abs(prev[1] - y) > 64 * UNIT) return [x / UNIT, y / UNIT];
    return [(prev[0] + (x - prev[0]) * f) / UNIT, (prev[1] + (y - prev[1]) * f) / UNIT];
  }
}

/** draw paints the arena, the gems and the discs; me is this tab's public id. */
export function draw(ctx: CanvasRenderingContext2D, world: World, me: string, pos: Positions, now: number, tickMs: number): void {
  const w = WIDTH / UNIT;
  const h = HEIGHT / UNIT;
  ctx.clearRect(0, 0, w, h);
  const bg = ctx.createRadialGradient(w / 2, h / 2, 40, w / 2, h / 2, w * 0.7);
  bg.addColorStop(0, "#1b2140");
  bg.addColorStop(1, "#0b0e1c");
  ctx.fillStyle = bg;
  ctx.fillRect(0, 0, w, h);
  ctx.strokeStyle = "rgba(120,140,255,0.08)";
  ctx.lineWidth = 1;
  for (let x = 40; x < w; x += 40) line(ctx, x, 0, x, h);
  for (let y = 40; y < h; y += 40) line(ctx, 0, y, w, y);

  for (const g of world.gems) drawGem(ctx, g.x / UNIT, g.y / UNIT, g.value > 1, now);

  for (const p of world.players) {
    if (!p.online) continue;
    const [x, y] = pos.of(p.id, p.x, p.y, now, tickMs);
    const r = PLAYER_RADIUS / UNIT;
    const c = hue(p.id);
    ctx.save();
    ctx.shadowColor = `hsl(${c} 90% 60%)`;
    ctx.shadowBlur = p.cooldown > 0 ? 28 : 14;
    const body = ctx.createRadialGradient(x - r / 3, y - r / 3, 2, x, y, r);
    body.addColorStop(0, `hsl(${c} 95% 78%)`);
    body.addColorStop(1, `hsl(${c} 80% 45%)`);
    ctx.fillStyle = body;
    ctx.beginPath();
    ctx.arc(x, y, r, 0, Math.PI * 2);
    ctx.fill();
    ctx.restore();
    if (p.id === me) {
      ctx.strokeStyle = "#ffffff";
      ctx.lineWidth = 2.5;
      ctx.beginPath();
      ctx.arc(x, y, r + 5, 0, Math.PI * 2);
      ctx.stroke();
    }
    ctx.fillStyle = "#0b0e1c";
    ctx.font = "bold 13px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(String(p.score), x, y + 1);
    ctx.fillStyle = "rgba(255,255,255,0.85)";
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillText(displayName(p.name, p.id) + (p.id === me ? " (you)" : ""), x, y - r - 11);
  }

  if (world.pause > 0) {
    ctx.fillStyle = "rgba(5,8,20,0.6)";
    ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = "#ffd54a";
    ctx.textAlign = "center";
    ctx.font = "bold 34px system-ui, sans-serif";
    const winner = world.player(world.winner);
    ctx.fillText(winner ? `${displayName(winner.name, winner.id)} wins with ${world.winnerScore}!` : "Nobody scored", w / 2, h / 2 - 10);
    ctx.fillStyle = "#ffffff";
    ctx.font = "16px system-ui, sans-serif";
    ctx.fillText("next round starts in a moment", w / 2, h / 2 + 26);
  }
}

function line(ctx: CanvasRenderingContext2D, x0: number, y0: number, x1: number, y1: number): void {
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.stroke();
}

function drawGem(ctx: CanvasRenderingContext2D, x: number, y: number, big: boolean, now: number): void {
  const r = (GEM_RADIUS / UNIT) * (big ? 1.35 : 1) * (1 + 0.08 * Math.sin(now / 180 + x));
  ctx.save();
  ctx.shadowColor = big ? "#ffd54a" : "#4af2ff";
  ctx.shadowBlur = 16;
  ctx.fillStyle = big ? "#ffd54a" : "#4af2ff";
  ctx.beginPath();
  ctx.moveTo(x, y - r * 1.3);
  ctx.lineTo(x + r, y);
  ctx.lineTo(x, y + r * 1.3);
  ctx.lineTo(x - r, y);
  ctx.closePath();
  ctx.fill();
  ctx.fillStyle = "rgba(255,255,255,0.7)";
  ctx.beginPath();
  ctx.moveTo(x, y - r * 1.3);
  ctx.lineTo(x + r * 0.45, y - r * 0.2);
  ctx.lineTo(x - r * 0.2, y - r * 0.2);
  ctx.closePath();
  ctx.fill();
  ctx.restore();
}
