/** DataComp's image-based ("image-cluster") filter: nearest-centroid assignment, target sets (.npy I/O: lib/formats/npy). */
export * from './nearest';
export * from './target';
