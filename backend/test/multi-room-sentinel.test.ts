import { multiRoomSuite } from './suites/multi-room.js';

multiRoomSuite('sentinel');
