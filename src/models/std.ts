/**
 * Soft Threshold Dynamics (STD) with a volume constraint, after Liu, Wang & Tai, "Deep CNNs with
 * spatial regularization, volume and star-shape priors for image segmentation" (JMIV 2022).
 *
 * For two classes (background, nodule) the softmax over [o_bg, o_fg] is a sigmoid of the logit
 * difference z = o_fg - o_bg, and q_bg = -q_fg, so the iteration of the method note,
 *     u_{t+1} = softmax(eps^2 (o - lambda * G_sigma * (1 - 2 u_t))),
 * reduces to one channel:
 *     u_{t+1} = sigmoid(eps^2 (z - 2 lambda G_sigma * (1 - 2 u_t)) + b),
 * where b is the per-image shift of the volume constraint: found by bisection so that sum(u)
 * lies in [minArea, maxArea] (pixels). The bisection runs without gradient (b is a constant for
 * autograd, as a Lagrange multiplier would be), the rest is differentiable, sigma/lambda/eps
 * included.
 */
import { F, tidy, noGrad, full, arange, tensor, type Tensor } from '../tensor/index.ts';
import { Module } from '../nn/index.ts';

export interface StdOptions {
  /** Iterations T. */
  iterations: number;
  /** Gaussian kernel half-size in pixels (kernel 2h+1). */
  kernelHalfSize: number;
}

export interface AreaBounds {
  /** Per image [N] lower bound of the foreground area, pixels (float32). */
  min: Tensor;
  /** Per image [N] upper bound, pixels. */
  max: Tensor;
}

/** Normalised 1D Gaussian taps exp(-x^2 / 2 sigma^2), x = -h..h, differentiable in sigma. */
export function gaussianTaps(sigma: Tensor, halfSize: number, xs: Tensor): Tensor {
  return tidy(() => {
    const w = xs.pow(2).div(sigma.pow(2).mul(-2)).exp();
    return w.div(w.sum());
  });
}

/** Separable Gaussian blur of [N, 1, H, W] with replicate-free zero padding ("same" size). */
export function gaussianBlur(u: Tensor, taps: Tensor, halfSize: number): Tensor {
  return tidy(() => {
    const k = 2 * halfSize + 1;
    const kx = taps.reshape([1, 1, 1, k]);
    const ky = taps.reshape([1, 1, k, 1]);
    const a = F.conv2d(u, kx, null, { padding: [0, halfSize] });
    return F.conv2d(a, ky, null, { padding: [halfSize, 0] });
  });
}

/**
 * Per-image shift b ([N, 1, 1, 1]) such that sum(sigmoid(a + b)) over each image lands in
 * [min, max]; 0 where it already does. Vectorised bisection over all images at once.
 */
export function volumeShift(a: Tensor, bounds: AreaBounds, steps = 14, range = 20): Tensor {
  return noGrad(() =>
    tidy(() => {
      const n = a.shape[0]!;
      const area0 = a.sigmoid().sum([1, 2, 3]);
      const target = area0.maximum(bounds.min).minimum(bounds.max);
      let lo = full([n], -range);
      let hi = full([n], range);
      for (let s = 0; s < steps; s++) {
        const mid = lo.add(hi).mul(0.5);
        const area = a.add(mid.reshape([n, 1, 1, 1])).sigmoid().sum([1, 2, 3]);
        const tooSmall = area.lt(target);
        const nextLo = F.where(tooSmall, mid, lo);
        const nextHi = F.where(tooSmall, hi, mid);
        lo.dispose();
        hi.dispose();
        lo = nextLo;
        hi = nextHi;
      }
      const b = lo.add(hi).mul(0.5);
      // Exactly zero where the area was already within bounds, so the constraint is inactive there.
      const inside = area0.ge(bounds.min).logicalAnd(area0.le(bounds.max));
      return F.where(inside, b.mul(0), b).reshape([n, 1, 1, 1]);
    }),
  );
}

/**
 * Runs T STD iterations on logits z [N, 1, H, W]. Returns the final iteration's logits
 * eps^2 (z - 2 lambda q) + b, whose sigmoid is u_T: losses take logits for numerical stability.
 * sigma, lambda, eps are scalar tensors (learnable, positive).
 */
export function softThresholdDynamics(
  z: Tensor,
  params: { sigma: Tensor; lambda: Tensor; eps: Tensor },
  opts: StdOptions,
  bounds?: AreaBounds,
): Tensor {
  return tidy(() => {
    const h = opts.kernelHalfSize;
    const xs = arange(-h, h + 1).to('float32');
    const taps = gaussianTaps(params.sigma, h, xs);
    const eps2 = params.eps.pow(2);
    const twoLambda = params.lambda.mul(2);
    let logits = constrained(z.mul(eps2), bounds);
    for (let t = 0; t < opts.iterations; t++) {
      const u = logits.sigmoid();
      const q = gaussianBlur(u.mul(-2).add(1), taps, h);
      logits = constrained(z.sub(q.mul(twoLambda)).mul(eps2), bounds);
    }
    return logits;
  });
}

function constrained(a: Tensor, bounds: AreaBounds | undefined): Tensor {
  if (!bounds) return a;
  return a.add(volumeShift(a, bounds));
}

/**
 * The STD layer as a module: learnable sigma, lambda and eps, kept positive by storing their
 * logarithms (a plain scalar could be driven negative by a gradient step).
 */
export class SoftThresholdDynamics extends Module<[Tensor, AreaBounds | undefined], Tensor> {
  readonly logSigma: Tensor;
  readonly logLambda: Tensor;
  readonly logEps: Tensor;
  readonly options: StdOptions;

  constructor(init: { sigma: number; lambda: number; eps: number }, options: StdOptions) {
    super();
    this.options = { ...options };
    this.logSigma = this.registerParameter('logSigma', tensor([Math.log(init.sigma)]).requiresGrad_(true));
    this.logLambda = this.registerParameter('logLambda', tensor([Math.log(init.lambda)]).requiresGrad_(true));
    this.logEps = this.registerParameter('logEps', tensor([Math.log(init.eps)]).requiresGrad_(true));
  }

  /** Current values of sigma, lambda, eps (plain numbers, for logs and model cards). */
  values(): { sigma: number; lambda: number; eps: number } {
    return { sigma: Math.exp(this.logSigma.item()), lambda: Math.exp(this.logLambda.item()), eps: Math.exp(this.logEps.item()) };
  }

  forward(z: Tensor, bounds?: AreaBounds): Tensor {
    return tidy(() =>
      softThresholdDynamics(z, { sigma: this.logSigma.exp(), lambda: this.logLambda.exp(), eps: this.logEps.exp() }, this.options, bounds),
    );
  }

  protected override extraRepr(): string {
    return `iterations=${this.options.iterations}, kernelHalfSize=${this.options.kernelHalfSize}`;
  }
}
