/** DataComp's image-based ("image-cluster") filter: .npy I/O, nearest-centroid assignment, target sets. */
export * from './npy';
export * from './nearest';
export * from './target';
