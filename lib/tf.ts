/**
 * The TensorFlow.js every rtdlab module imports: tfjs-core's API with every gradient registered
 * (see lib/backend/tfjs_full.ts for why that takes the `@tensorflow/tfjs` bundle).
 *
 * @module
 */

import "./backend/tfjs_full.ts";

export * from "@tensorflow/tfjs-core";
