/**
 * Custom search attributes: the Web UI's list view filters and sorts runs by them
 * (e.g. `RecaptionPhase = "select"`). Registered by `recaption dev-server` and by the tests' local server.
 * Upserted per phase and per finished page — never per shard, since each upsert is a history event.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const RUN_NAME = defineSearchAttributeKey('RecaptionRun', SearchAttributeType.KEYWORD);
export const PRESET = defineSearchAttributeKey('RecaptionPreset', SearchAttributeType.KEYWORD);
export const PHASE = defineSearchAttributeKey('RecaptionPhase', SearchAttributeType.KEYWORD);
export const SHARDS_TOTAL = defineSearchAttributeKey('RecaptionShardsTotal', SearchAttributeType.INT);
export const SHARDS_DONE = defineSearchAttributeKey('RecaptionShardsDone', SearchAttributeType.INT);
export const SHARDS_FAILED = defineSearchAttributeKey('RecaptionShardsFailed', SearchAttributeType.INT);

export const ALL_SEARCH_ATTRIBUTES = [RUN_NAME, PRESET, PHASE, SHARDS_TOTAL, SHARDS_DONE, SHARDS_FAILED];
