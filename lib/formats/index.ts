export * from './webdataset';
export * from './parquet';
export * from './img2dataset';
export * from './npy';
export * from './subset';
