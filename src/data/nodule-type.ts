/**
 * The nodule's type from the LIDC `Texture` rating (majority vote of the readers), in the three
 * groups that Lung-RADS and Fleischner manage differently.
 */
export const NODULE_TYPES = ['solid', 'part-solid', 'ground-glass'] as const;
export type NoduleType = (typeof NODULE_TYPES)[number];

/**
 * LIDC texture label (as metadata.csv spells it) or rating 1-5 -> type:
 * Solid (5) and Solid/Mixed (4) are solid, Part Solid/Mixed (3) part-solid, Non-Solid/GGO (1)
 * and Non-Solid/Mixed (2) ground-glass. Anything else is null (unknown).
 */
export function noduleTypeOfTexture(texture: string | number): NoduleType | null {
  const v = typeof texture === 'number' ? texture : textureRating(texture);
  if (v === null || !Number.isFinite(v)) return null;
  const r = Math.round(v);
  if (r >= 4 && r <= 5) return 'solid';
  if (r === 3) return 'part-solid';
  if (r >= 1 && r <= 2) return 'ground-glass';
  return null;
}

function textureRating(label: string): number | null {
  switch (label.trim().toLowerCase()) {
    case 'solid':
      return 5;
    case 'solid/mixed':
      return 4;
    case 'part solid/mixed':
      return 3;
    case 'non-solid/mixed':
      return 2;
    case 'non-solid/ggo':
      return 1;
    default: {
      const n = Number(label);
      return label.trim() !== '' && Number.isFinite(n) ? n : null;
    }
  }
}

/** Subsolid = part-solid or ground-glass (the types the crop benchmark under-represents). */
export function isSubsolid(t: NoduleType | null): boolean {
  return t === 'part-solid' || t === 'ground-glass';
}
