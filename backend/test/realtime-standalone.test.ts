import { realtimeSuite } from './suites/realtime.js';

realtimeSuite('standalone');
