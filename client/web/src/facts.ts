// The curve's facts as a definition list, for the form's preview and the
// shared video's page.
import { Shape, type Curve } from "./gen/whirl/v1/animation_pb.js";

export function showFacts(dl: HTMLElement, curve: Curve | undefined, extra: [string, string][] = []): void {
  dl.replaceChildren();
  const s = curve?.summary;
  const facts: [string, string][] = [];
  if (curve && s) {
    const shapes = s.shapes.map((x) => Shape[x].toLowerCase());
    facts.push(
      ["Wheels", String(s.wheels)],
      ["Shapes", shapes.every((x) => x === shapes[0]) ? `all ${shapes[0]}` : shapes.join(", ")],
      ["Frequencies", curve.wheels.map((w) => w.frequency).join(", ")],
      ["k-fold", `${s.kFold} (congruency ${s.congruency})`],
      ["Symmetry", `${s.symmetry}-fold`],
    );
  }
  for (const [k, v] of [...facts, ...extra]) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dl.append(dt, dd);
  }
}
