/** Every activity. GPU workers register only captionShard and scoreShard; CPU workers the rest. */
export { captionShard } from './caption';
export { scoreShard } from './score';
export { selectShard } from './select';
export { writeShard } from './write';
export { planRun, computeThresholds, finalizeRun } from './run';

import { captionShard } from './caption';
import { scoreShard } from './score';
import { selectShard } from './select';
import { writeShard } from './write';
import { planRun, computeThresholds, finalizeRun } from './run';

export const gpuActivities = { captionShard, scoreShard };
export const cpuActivities = { planRun, computeThresholds, selectShard, writeShard, finalizeRun };
