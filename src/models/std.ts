/**
 * Soft Threshold Dynamics (STD) with a volume constraint, after Liu, Wang & Tai, "Deep CNNs with
 * spatial regularization, volume and star-shape priors for image segmentation" (JMIV 2022).
 *
 * For two classes (background, nodule) the softmax over [o_bg, o_fg] is a sigmoid of the logit
 * difference z = o_fg - o_bg, and q_bg = -q_fg, so the iteration of the method note,
 *     u_{t+1} = softmax(eps^2 (o - lambda * G_sigma * (1 - 2 u_t))),
 * reduces to one channel:
 *     u_{t+1} = sigmoid(eps^2 (z - 2 lambda G_sigma * (1 - 2 u_t)) + b),
 * where b is the per-image shift of the volume constraint: found by safeguarded Newton steps
 * (the method note says bisection; Newton reaches the same root in fewer passes) so that sum(u)
 * lies in [minArea, maxArea] (pixels). That search runs without gradient (b is a constant for
 * autograd, as a Lagrange multiplier would be), the rest is differentiable, sigma/lambda/eps
 * included.
 */
import { F, tidy, noGrad, zeros, matmul, tensor, type Tensor } from '../tensor/index.ts';
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

/**
 * The Gaussian blur G_sigma * u with zero padding as two matrix products, K_H u K_W, where K is
 * the banded Toeplitz matrix of the normalised taps exp(-d^2 / 2 sigma^2), |d| <= h. On CPU this
 * is far faster than a 1-channel convolution (and its backward), and differentiable in sigma.
 */
export function gaussianMatrix(sigma: Tensor, size: number, halfSize: number): Tensor {
  return tidy(() => {
    const d2 = new Float32Array(size * size);
    const band = new Float32Array(size * size);
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) {
        d2[i * size + j] = (i - j) * (i - j);
        band[i * size + j] = Math.abs(i - j) <= halfSize ? 1 : 0;
      }
    }
    const taps = [];
    for (let d = -halfSize; d <= halfSize; d++) taps.push(d * d);
    const tapSum = tensor(Float32Array.from(taps), [taps.length]).div(sigma.pow(2).mul(-2)).exp().sum();
    return tensor(d2, [size, size])
      .div(sigma.pow(2).mul(-2))
      .exp()
      .mul(tensor(band, [size, size]))
      .div(tapSum);
  });
}

/** Separable Gaussian blur of [N, 1, H, W] given the row and column matrices from gaussianMatrix. */
export function gaussianBlur(u: Tensor, kH: Tensor, kW: Tensor): Tensor {
  return tidy(() => matmul(matmul(kH, u), kW));
}

/**
 * Per-image shift b ([N, 1, 1, 1]) such that sum(sigmoid(a + b)) over each image lands in
 * [min, max]; exactly 0 where it already does. Safeguarded Newton steps on the monotone area
 * function, all images at once (a bisection needs ~3x more passes for the same precision).
 * `start` warm-starts from the previous STD iteration's shift, which changes little between
 * iterations, so a few steps suffice there.
 */
export function volumeShift(a: Tensor, bounds: AreaBounds, steps = 6, maxStep = 4, start?: Tensor): Tensor {
  return noGrad(() =>
    tidy(() => {
      const n = a.shape[0]!;
      const area0 = a.sigmoid().sum([1, 2, 3]);
      const target = area0.maximum(bounds.min).minimum(bounds.max);
      let b = start ? start.detach() : zeros([n, 1, 1, 1]);
      for (let s = 0; s < steps; s++) {
        const u = a.add(b).sigmoid();
        const area = u.sum([1, 2, 3]);
        const slope = u.mul(u.rsub(1)).sum([1, 2, 3]).clamp(1e-3, null);
        const delta = target.sub(area).div(slope).clamp(-maxStep, maxStep).reshape([n, 1, 1, 1]);
        b = b.add(delta);
      }
      const inside = area0.ge(bounds.min).logicalAnd(area0.le(bounds.max)).reshape([n, 1, 1, 1]);
      return F.where(inside, zeros([n, 1, 1, 1]), b);
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
    const kH = gaussianMatrix(params.sigma, z.shape[2]!, h);
    const kW = z.shape[3] === z.shape[2] ? kH : gaussianMatrix(params.sigma, z.shape[3]!, h);
    const eps2 = params.eps.pow(2);
    const twoLambda = params.lambda.mul(2);
    let a = z.mul(eps2);
    let b = bounds ? volumeShift(a, bounds, 6) : null;
    let logits = b ? a.add(b) : a;
    for (let t = 0; t < opts.iterations; t++) {
      const u = logits.sigmoid();
      const q = gaussianBlur(u.mul(-2).add(1), kH, kW);
      a = z.sub(q.mul(twoLambda)).mul(eps2);
      if (bounds) b = volumeShift(a, bounds, 3, 4, b ?? undefined);
      logits = b ? a.add(b) : a;
    }
    return logits;
  });
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
