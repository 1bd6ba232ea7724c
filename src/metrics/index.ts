export type { MaskGrid } from './grid.ts';
export {
  segmentationMetrics,
  hausdorff95Mm,
  overlapCounts,
  maskOverlap,
  percentile,
  summarize,
  MetricAccumulator,
  metricsCsv,
  summaryMarkdown,
  METRIC_NAMES,
  type SegmentationMetrics,
  type MetricSummary,
  type MetricName,
} from './segmentation.ts';
export { measureNodule, type NoduleMeasures } from './measures.ts';
export { squaredDistanceToSites, surfaceVoxels } from './distance.ts';
