// Two users of OpenGL in one process: Dawn's OpenGL ES backend (the WebGPU 'gl' adapter, EGL on
// Mesa) and gpu.js's GL mode (headless-gl: ANGLE on GLX, on an X display). Once one of them has
// made its contexts current, the other's glXMakeCurrent fails with BadAccess, and Xlib's default
// error handler ends the whole process. So each claims OpenGL for the process before it starts,
// and the second is refused with an error that says why, instead of the process dying.
import { userError } from '../util/diagnostics.js';

export type GlUser = "Dawn's OpenGL ES backend (the WebGPU gl adapter)" | "gpu.js's GL mode (headless-gl)";

let holder: GlUser | undefined;

/** Claims OpenGL in this process for `user`; throws a user error if the other user holds it. */
export function claimProcessGl(user: GlUser): void {
  if (holder !== undefined && holder !== user) {
    throw userError(`${user} cannot start in this process: ${holder} already uses OpenGL here, and the two together end the process with an X error (BadAccess in glXMakeCurrent)`, undefined, [
      'run them in separate processes (separate convc commands)',
    ]);
  }
  holder = user;
}
